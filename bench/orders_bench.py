"""PlaceOrder throughput and latency at fixed concurrency: SQLite (WAL) vs PostgreSQL.

Each backend gets its own `isthmus serve orders` process; a grpc.aio client keeps
`--concurrency` calls in flight with unique idempotency keys for `--orders` calls after a
warm-up. Results go to bench/results/orders.json and a table on stdout.

    .venv/bin/python -m bench.orders_bench --orders 3000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from isthmus.orders.v1 import orders_pb2, orders_pb2_grpc
from tests.support.postgres import EphemeralPostgres
from tests.support.processes import start_private_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "orders.json"


def place_request(key: str) -> orders_pb2.PlaceOrderRequest:
    return orders_pb2.PlaceOrderRequest(
        idempotency_key=key,
        unified_id="u_bench",
        currency_code="EUR",
        line_items=[
            orders_pb2.LineItem(sku="sku-1", quantity=2, unit_price_minor=1999),
            orders_pb2.LineItem(sku="sku-2", quantity=1, unit_price_minor=500),
        ],
        payment_token="tok_bench",
    )


async def load(port: int, prefix: str, total: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = orders_pb2_grpc.OrderServiceStub(channel)

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                started = time.perf_counter()
                try:
                    await stub.PlaceOrder(place_request(f"{prefix}-{i:07d}"), timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "orders": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "orders_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


def run_backend(name: str, database_url: str, workdir: Path, args: argparse.Namespace) -> Any:
    proc, port = start_private_server(workdir, database_url)
    try:
        asyncio.run(load(port, f"warm-{name}", args.warmup, args.concurrency))
        result = asyncio.run(load(port, f"run-{name}", args.orders, args.concurrency))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return {"backend": name, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="isthmus-bench-") as tmp:
        work = Path(tmp)
        rows.append(run_backend("sqlite", f"sqlite:///{work / 'bench.db'}", work, args))
        with EphemeralPostgres(work / "pg") as pg:
            rows.append(run_backend("postgresql", pg.url, work, args))
    sqlite, postgres = rows
    report = {
        "benchmark": "PlaceOrder, unique keys, 2 line items",
        "concurrency": args.concurrency,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": rows,
        "ratio_postgresql_over_sqlite_orders_per_s": round(
            postgres["orders_per_s"] / sqlite["orders_per_s"], 2
        ),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'backend':<11} {'orders/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for row in rows:
        print(
            f"{row['backend']:<11} {row['orders_per_s']:>9} {row['p50_ms']:>8} "
            f"{row['p99_ms']:>8} {row['errors']:>7}"
        )
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
