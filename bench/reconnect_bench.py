"""How soon the gateway's channel to an endpoint works again after the endpoint's link comes
back: gRPC's default connection terms beside the gateway's (`ConnectionConfig`), in one run,
on the same cuts.

    python -m bench.reconnect_bench [--cuts 10,25] [--repeats 3]

Needs root and `ip`: it makes two network namespaces of its own (a "gateway" side and a
"zone" side joined by a veth link, as `isthmus up --isolate` does), serves grpc.health.v1 in
the zone, and from the gateway side polls it over two channels, one with gRPC's defaults and
one with the gateway's options, every 0.1 s (0.5 s timeout). Each repeat sets the link down
for the cut's seconds, then up, and measures until each channel's next check passes.
Results in bench/results/reconnect.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.gateway.config import ConnectionConfig
from services.gateway.upstream import CHANNEL_OPTIONS, channel_options
from services.local import netns

RESULTS = Path(__file__).with_name("results") / "reconnect.json"
NET = netns.plan(["zone"], subnet="10.78", prefix="ismb")
LINK = NET.links[1]  # gateway ns <-> zone ns
PORT = 47311


def serve() -> None:
    """In the zone namespace: a health server until killed."""

    async def run() -> None:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        server.add_insecure_port(f"{LINK.far_ip}:{PORT}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(run())


def set_link(state: str) -> None:
    netns.run_ip(["ip", "-n", LINK.near_ns or "", "link", "set", LINK.near_if, state])


async def check(stub: health_pb2_grpc.HealthStub) -> bool:
    try:
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
    except grpc.aio.AioRpcError:
        return False
    return True


async def poll_until_up(stub: health_pb2_grpc.HealthStub, since: float) -> float:
    while True:
        if await check(stub):
            return time.monotonic() - since
        await asyncio.sleep(0.1)


async def poll_for(stub: health_pb2_grpc.HealthStub, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await check(stub)
        await asyncio.sleep(0.1)


async def probe(cuts: list[float], repeats: int) -> dict[str, Any]:
    """In the gateway namespace: both channels through the same cuts."""
    target = f"{LINK.far_ip}:{PORT}"
    options = {"grpc_defaults": CHANNEL_OPTIONS, "gateway": channel_options(ConnectionConfig())}
    stubs = {
        name: health_pb2_grpc.HealthStub(grpc.aio.insecure_channel(target, options=opts))
        for name, opts in options.items()
    }
    for stub in stubs.values():
        await poll_until_up(stub, time.monotonic())
    runs: dict[str, dict[str, list[float]]] = {name: {} for name in stubs}
    for cut in cuts:
        for _ in range(repeats):
            set_link("down")
            try:
                await asyncio.gather(*(poll_for(s, cut) for s in stubs.values()))
            finally:
                set_link("up")
            back = time.monotonic()
            took = await asyncio.gather(*(poll_until_up(s, back) for s in stubs.values()))
            for name, seconds in zip(stubs, took, strict=True):
                runs[name].setdefault(f"{cut:g}", []).append(round(seconds, 3))
    return runs


def summarise(runs: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    cuts: dict[str, Any] = {}
    for cut in runs["gateway"]:
        base, ours = runs["grpc_defaults"][cut], runs["gateway"][cut]
        cuts[cut] = {
            "grpc_defaults_s": {"median": statistics.median(base), "max": max(base), "all": base},
            "gateway_s": {"median": statistics.median(ours), "max": max(ours), "all": ours},
            "median_ratio_defaults_over_gateway": round(
                statistics.median(base) / max(statistics.median(ours), 0.01), 1
            ),
        }
    return cuts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", default="10,25", help="link-down seconds, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--role", choices=["main", "serve", "probe"], default="main")
    args = parser.parse_args()
    cuts = [float(c) for c in args.cuts.split(",")]
    if args.role == "serve":
        serve()
        return
    if args.role == "probe":
        print(json.dumps(asyncio.run(probe(cuts, args.repeats))))
        return
    if not netns.can_isolate():
        sys.exit("reconnect_bench needs root and the `ip` tool (it makes its own namespaces)")
    netns.apply(NET)
    me = [sys.executable, "-m", "bench.reconnect_bench", "--cuts", args.cuts]
    probe_role = ["--repeats", str(args.repeats), "--role", "probe"]
    server = subprocess.Popen([*netns.exec_prefix(LINK.far_ns), *me, "--role", "serve"])
    try:
        probed = subprocess.run(
            [*netns.exec_prefix(NET.gateway_ns), *me, *probe_role],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        server.kill()
        server.wait()
        netns.remove(NET)
    result = {
        "what": "seconds from a link coming back until the next health check over the same "
        "channel passes (polled every 0.1 s); gRPC's default connection terms vs the "
        "gateway's ConnectionConfig defaults",
        "gateway_connection": ConnectionConfig().model_dump(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cuts_s": summarise(json.loads(probed.stdout)),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
