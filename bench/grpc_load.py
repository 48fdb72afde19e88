"""A small closed-loop gRPC load client (grpc.aio, several processes) that checks every
status, unlike h2load which counts HTTP 200 as success.

    run_load(target, path, request, metadata, concurrency, seconds, processes) -> LoadResult
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import time
from collections import Counter
from dataclasses import dataclass


@dataclass
class LoadResult:
    ok: int
    errors: dict[str, int]
    seconds: float
    latencies_s: list[float]

    @property
    def rps(self) -> float:
        return self.ok / self.seconds

    def percentile_ms(self, q: float) -> float:
        data = sorted(self.latencies_s)
        return data[min(len(data) - 1, int(len(data) * q))] * 1000

    def summary(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "p50_ms": round(statistics.median(self.latencies_s) * 1000, 3),
            "p99_ms": round(self.percentile_ms(0.99), 3),
        }


async def _worker_loop(
    target: str,
    path: str,
    request: bytes,
    metadata: tuple[tuple[str, str], ...],
    concurrency: int,
    seconds: float,
) -> tuple[int, Counter[str], list[float]]:
    import grpc

    ok, errors, latencies = 0, Counter[str](), []
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(path)
        await call(request, metadata=metadata, timeout=10)  # connect before timing
        stop_at = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal ok
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    await call(request, metadata=metadata, timeout=10)
                except grpc.aio.AioRpcError as exc:
                    errors[exc.code().name] += 1
                    continue
                latencies.append(time.perf_counter() - started)
                ok += 1

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return ok, errors, latencies


def _process(
    args: tuple[str, str, bytes, tuple[tuple[str, str], ...], int, float],
) -> tuple[int, Counter[str], list[float]]:
    return asyncio.run(_worker_loop(*args))


def run_load(
    target: str,
    path: str,
    request: bytes,
    metadata: tuple[tuple[str, str], ...],
    concurrency: int,
    seconds: float,
    processes: int = 1,
) -> LoadResult:
    per = max(1, concurrency // processes)
    started = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(processes) as pool:
        parts = pool.map(_process, [(target, path, request, metadata, per, seconds)] * processes)
    elapsed = min(seconds, time.perf_counter() - started)
    ok = sum(p[0] for p in parts)
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    for part in parts:
        errors.update(part[1])
        latencies.extend(part[2])
    return LoadResult(ok, dict(errors), elapsed, latencies)
