"""Ranking throughput, one run, same model, 100 candidates per request:
(a) RankService in process, (b) a plain grpc.aio server around it, (c) Ray Serve's gRPC path
(direct ingress to the replica, as the gateway calls it; Serve's proxy alongside for
reference), then an autoscale step test (load step -> replicas over time).

(b) and (c) run side by side and are measured in alternating rounds: on this shared machine
one 10 s window can be 30% slower than the next, which swamps a one-shot comparison. Each
path's req/s is the median over its rounds; percentiles are over all its calls; the (c)/(b)
ratios are medians of the per-round ratios (each round measures both paths back to back, in
alternating order). A light-load row (2 calls in flight) compares latency when nothing queues.

    .venv/bin/python -m bench.ads_bench [--seconds 5] [--rounds 10] [--concurrency 8] [--no-step]

Writes bench/results/ads.json and bench/results/ads_autoscale.{json,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.grpc_load import LoadResult, _process
from services.models.registry import ModelRegistry
from services.public.ads.config import AdsConfig
from services.public.ads.service import RankService
from tests.support.ads_zone import BalancedLoad, rank_request, start_ads_zone

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PATH = "/isthmus.ads.v1.AdService/Rank"
CANDIDATES = 100
LIGHT = 2  # calls in flight for the light-load row: one per client process, nothing queues


def ensure_model(registry: Path) -> str:
    """The real model (trained on the Open Bandit logs), training it if there is none."""
    current = ModelRegistry(registry).current()
    if current is None:
        subprocess.run([sys.executable, "-m", "services.cli", "train"], cwd=ROOT, check=True)
        current = ModelRegistry(registry).current()
    assert current is not None
    return current


def summarise(result: LoadResult) -> dict[str, Any]:
    out = result.summary()
    out["rows_per_s"] = round(result.rps * CANDIDATES, 0)
    return out


def in_process(config: AdsConfig, seconds: float) -> dict[str, Any]:
    service = RankService(config)
    request = rank_request(CANDIDATES, "bench", user="user-1")
    for _ in range(50):
        service.rank(request)
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        started = time.perf_counter()
        service.rank(request)
        latencies.append(time.perf_counter() - started)
    return summarise(LoadResult(len(latencies), {}, seconds, latencies))


def balanced_load(
    targets: list[str], concurrency: int, seconds: float, metadata: tuple[tuple[str, str], ...]
) -> LoadResult:
    """grpc_load's closed loop, one client process per target (the caller balances)."""
    import multiprocessing as mp

    request = rank_request(CANDIDATES, "bench", user="user-1").SerializeToString()
    processes = max(2, len(targets))
    per = max(1, concurrency // processes)
    jobs = [
        (targets[i % len(targets)], PATH, request, metadata, per, seconds) for i in range(processes)
    ]
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_process, jobs)
    elapsed = min(seconds, time.perf_counter() - started)
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    for part in parts:
        errors.update(part[1])
        latencies.extend(part[2])
    return LoadResult(sum(p[0] for p in parts), dict(errors), elapsed, latencies)


@contextmanager
def plain_server(config: AdsConfig) -> Iterator[str]:
    """Baseline (b): bench/ads_plain_server.py in its own process; yields its target."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.ads_plain_server", config.model_dump_json()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield f"127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        proc.terminate()
        proc.wait(30)


def zone_config(registry: Path, autoscaling: dict[str, Any]) -> str:
    return json.dumps(
        {"registry_dir": str(registry), "features_dir": None, "autoscaling": autoscaling}
    )


def pooled(results: list[LoadResult]) -> dict[str, Any]:
    """Rounds of one path together: median req/s over rounds, percentiles over every call."""
    latencies = [x for r in results for x in r.latencies_s]
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r.errors)
    whole = LoadResult(sum(r.ok for r in results), dict(errors), 1.0, latencies).summary()
    rps = statistics.median(r.rps for r in results)
    return {
        **{k: v for k, v in whole.items() if k != "rps"},
        "rps": round(rps, 1),
        "rps_by_round": [round(r.rps, 1) for r in results],
        "rows_per_s": round(rps * CANDIDATES, 0),
    }


def side_by_side(
    workdir: Path, registry: Path, config: AdsConfig, concurrency: int, seconds: float, rounds: int
) -> dict[str, Any]:
    """(b) and (c) up together, measured in alternating rounds, so drift in the shared
    machine's load falls on both alike (a light-load round follows each); Serve's proxy once."""
    fixed = {"min_replicas": 1, "max_replicas": 1}
    zone = start_ads_zone(workdir / "fixed", zone_config(registry, fixed))
    try:
        with plain_server(config) as plain:
            direct = zone.wait_endpoints(1)
            for target in (plain, *direct):  # warm both paths up
                balanced_load([target], concurrency, 2.0, ())
            b: list[LoadResult] = []
            c: list[LoadResult] = []
            light_b: list[LoadResult] = []
            light_c: list[LoadResult] = []
            paths = [(b, light_b, [plain]), (c, light_c, direct)]
            for i in range(rounds):
                # Which path goes first alternates, so neither always follows the other.
                for full, light, targets in paths if i % 2 == 0 else paths[::-1]:
                    full.append(balanced_load(targets, concurrency, seconds, ()))
                    light.append(balanced_load(targets, LIGHT, seconds / 2, ()))
            proxy = balanced_load(
                [f"127.0.0.1:{zone.grpc_port}"], concurrency, seconds, (("application", "ads"),)
            )
    finally:
        zone.stop()
    return {
        "b": pooled(b),
        "c": pooled(c),
        "proxy": summarise(proxy),
        "light": {"concurrency": LIGHT, "b": pooled(light_b), "c": pooled(light_c)},
        "paired": paired(b, c),
        "paired_light": paired(light_b, light_c),
    }


def paired(b: list[LoadResult], c: list[LoadResult]) -> dict[str, Any]:
    """(c)/(b) within each round (the two measured back to back), and the median of those:
    the machine's drift between rounds cancels out of each pair."""
    rps = [y.rps / x.rps for x, y in zip(b, c, strict=True)]
    p50 = [
        statistics.median(y.latencies_s) / statistics.median(x.latencies_s)
        for x, y in zip(b, c, strict=True)
    ]
    return {
        "rps_ratio_median": round(statistics.median(rps), 3),
        "rps_ratio_by_round": [round(r, 3) for r in rps],
        "p50_ratio_median": round(statistics.median(p50), 3),
        "p50_ratio_by_round": [round(r, 3) for r in p50],
    }


def autoscale_step(
    workdir: Path, registry: Path, low_rate: float, high_threads: int
) -> dict[str, Any]:
    """Low load (paced, `low_rate` calls/s), a step to as much as `high_threads` closed-loop
    callers can send, then none: replicas and calls/s sampled every 0.5 s, with the shipped
    peak-season autoscaling defaults. The idle phase is long enough for two scale-down steps."""
    zone = start_ads_zone(workdir / "step", zone_config(registry, {}))
    samples: list[dict[str, Any]] = []
    try:
        zone.wait_endpoints(1)
        started = time.monotonic()
        phases: list[tuple[str, int, float | None, float]] = [
            ("low", 2, low_rate, 15.0),
            ("step", high_threads, None, 45.0),
            ("idle", 0, None, 135.0),
        ]
        totals = {"ok": 0, "errors": 0}
        for name, threads, rate, length in phases:
            load = BalancedLoad(zone, threads, rate_per_s=rate) if threads else None
            if load:
                load.__enter__()
            end = time.monotonic() + length
            last_ok = 0
            while time.monotonic() < end:
                time.sleep(0.5)
                ok = load.stats.ok if load else 0
                samples.append(
                    {
                        "t_s": round(time.monotonic() - started, 2),
                        "phase": name,
                        "client_threads": threads,
                        "paced_calls_per_s": rate,
                        "replicas": zone.running_replicas(),
                        "calls_per_s": (ok - last_ok) * 2,
                    }
                )
                last_ok = ok
            if load:
                load.__exit__(None, None, None)
                totals["ok"] += load.stats.ok
                totals["errors"] += sum(load.stats.errors.values())
    finally:
        zone.stop()
    return {"samples": samples, "calls": totals, "config": AdsConfig().autoscaling.to_serve()}


def plot(step: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] for s in step["samples"]]
    fig, left = plt.subplots(figsize=(9, 4.5))
    left.step(t, [s["replicas"] for s in step["samples"]], where="post", color="tab:blue")
    left.set_xlabel("seconds")
    left.set_ylabel("running replicas", color="tab:blue")
    right = left.twinx()
    right.plot(t, [s["calls_per_s"] for s in step["samples"]], color="tab:orange", alpha=0.6)
    right.set_ylabel("calls/s answered", color="tab:orange")
    left.set_title("AdService autoscaling: load step and replicas (Ray Serve, direct ingress)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="per round and path")
    parser.add_argument("--rounds", type=int, default=10, help="alternating (b)/(c) rounds")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-step", action="store_true", help="skip the autoscale step test")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    version = ensure_model(ROOT / "var" / "models")
    workdir = Path(tempfile.mkdtemp(prefix="isthmus-ads-bench-"))
    registry = workdir / "models"
    shutil.copytree(ROOT / "var" / "models", registry)
    config = AdsConfig(registry_dir=registry, features_dir=None).resolved()
    load_before = os.getloadavg()
    a = in_process(config, args.seconds)
    bc = side_by_side(workdir, registry, config, args.concurrency, args.seconds, args.rounds)
    b, c = bc["b"], bc["c"]
    result = {
        "model_version": version,
        "candidates_per_request": CANDIDATES,
        "concurrency": args.concurrency,
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before},
        "a_in_process": a,
        "b_plain_grpc_aio": b,
        "c_serve_direct_ingress": c,
        "c_serve_proxy": bc["proxy"],
        "light_load": bc["light"],
        "ratios": {
            "c_over_b_rps": bc["paired"]["rps_ratio_median"],
            "c_over_b_p50": bc["paired"]["p50_ratio_median"],
            "c_over_b_rps_light_load": bc["paired_light"]["rps_ratio_median"],
            "c_over_b_p50_light_load": bc["paired_light"]["p50_ratio_median"],
            "paired_rounds": bc["paired"],
            "paired_rounds_light_load": bc["paired_light"],
            "b_over_a_rps": round(b["rps"] / a["rps"], 3),
            "proxy_over_b_rps": round(bc["proxy"]["rps"] / b["rps"], 3),
        },
    }
    (RESULTS / "ads.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.no_step:
        step = autoscale_step(workdir, registry, low_rate=50.0, high_threads=24)
        (RESULTS / "ads_autoscale.json").write_text(json.dumps(step, indent=1) + "\n")
        plot(step, RESULTS / "ads_autoscale.png")
        peak = max(s["replicas"] for s in step["samples"])
        print(json.dumps({"peak_replicas": peak, "calls": step["calls"]}))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
