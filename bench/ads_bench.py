"""Ranking throughput, one run, same model, 100 candidates per request:
(a) RankService in process, (b) a plain grpc.aio server around it, (c) Ray Serve's gRPC path
(direct ingress to the replica, as the gateway calls it; Serve's proxy alongside for
reference), then an autoscale step test (load step -> replicas over time).

(b) and (c) run side by side and are measured in alternating rounds: on this shared machine
one 10 s window can be 30% slower than the next, which swamps a one-shot comparison. Each
path's req/s is the median over its rounds; percentiles are over all its calls; the (c)/(b)
ratios are medians of the per-round ratios (each round measures both paths back to back, in
alternating order). A light-load row (one call in flight) compares latency when nothing queues.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.grpc_load import LoadResult, _process
from services.models.registry import ModelRegistry
from services.public.ads.config import AdsConfig
from services.public.ads.service import RankService
from tests.support.ads_zone import BalancedLoad, rank_request, start_ads_zone
from tests.support.processes import listening_pid

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PATH = "/isthmus.ads.v1.AdService/Rank"
CANDIDATES = 100
LIGHT = 1  # calls in flight for the light-load row: nothing queues, p50 is one call's latency


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


@dataclass
class Measured:
    load: LoadResult
    server_cpu_s: float  # CPU the serving process used meanwhile (all its threads)

    @property
    def cpu_ms_per_call(self) -> float:
        return self.server_cpu_s * 1000 / max(1, self.load.ok)


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Clients:
    """grpc_load's closed loop from two client processes that live for the whole comparison
    (starting processes inside a measured window would tax whichever path is measured)."""

    PROCESSES = 2

    def __init__(self) -> None:
        import multiprocessing as mp

        self._pool = mp.get_context("spawn").Pool(self.PROCESSES)
        self._request = rank_request(CANDIDATES, "bench", user="user-1").SerializeToString()

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def run(
        self,
        targets: list[str],
        concurrency: int,
        seconds: float,
        metadata: tuple[tuple[str, str], ...] = (),
        server_pid: int | None = None,
    ) -> Measured:
        processes = min(self.PROCESSES, concurrency)
        per = max(1, concurrency // processes)
        jobs = [
            (targets[i % len(targets)], PATH, self._request, metadata, per, seconds)
            for i in range(processes)
        ]
        cpu_before = process_cpu_s(server_pid) if server_pid else 0.0
        parts = self._pool.map(_process, jobs)
        cpu = process_cpu_s(server_pid) - cpu_before if server_pid else 0.0
        errors: Counter[str] = Counter()
        latencies: list[float] = []
        for part in parts:
            errors.update(part[1])
            latencies.extend(part[2])
        return Measured(LoadResult(sum(p[0] for p in parts), dict(errors), seconds, latencies), cpu)


@contextmanager
def plain_server(config: AdsConfig) -> Iterator[tuple[str, int]]:
    """Baseline (b): bench/ads_plain_server.py in its own process; yields (target, pid)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.ads_plain_server", config.model_dump_json()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield f"127.0.0.1:{int(proc.stdout.readline())}", proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def zone_config(registry: Path, autoscaling: dict[str, Any]) -> str:
    return json.dumps(
        {"registry_dir": str(registry), "features_dir": None, "autoscaling": autoscaling}
    )


def pooled(rounds: list[Measured]) -> dict[str, Any]:
    """Rounds of one path together: median req/s over rounds, percentiles over every call,
    the serving process's CPU per call over all rounds."""
    loads = [m.load for m in rounds]
    latencies = [x for r in loads for x in r.latencies_s]
    errors: Counter[str] = Counter()
    for r in loads:
        errors.update(r.errors)
    calls = sum(r.ok for r in loads)
    whole = LoadResult(calls, dict(errors), 1.0, latencies).summary()
    rps = statistics.median(r.rps for r in loads)
    cpu = sum(m.server_cpu_s for m in rounds)
    return {
        **{k: v for k, v in whole.items() if k != "rps"},
        "rps": round(rps, 1),
        "rps_by_round": [round(r.rps, 1) for r in loads],
        "rows_per_s": round(rps * CANDIDATES, 0),
        "server_cpu_ms_per_call": round(cpu * 1000 / max(1, calls), 3),
    }


def paired(b: list[Measured], c: list[Measured]) -> dict[str, Any]:
    """(c)/(b) within each round (the two measured back to back), and the median of those:
    the machine's drift between rounds cancels out of each pair."""
    pairs = list(zip(b, c, strict=True))
    rps = [y.load.rps / x.load.rps for x, y in pairs]
    p50 = [
        statistics.median(y.load.latencies_s) / statistics.median(x.load.latencies_s)
        for x, y in pairs
    ]
    cpu = [y.cpu_ms_per_call / x.cpu_ms_per_call for x, y in pairs]
    return {
        "rps_ratio_median": round(statistics.median(rps), 3),
        "rps_ratio_by_round": [round(r, 3) for r in rps],
        "p50_ratio_median": round(statistics.median(p50), 3),
        "p50_ratio_by_round": [round(r, 3) for r in p50],
        "server_cpu_per_call_ratio_median": round(statistics.median(cpu), 3),
        "server_cpu_per_call_ratio_by_round": [round(r, 3) for r in cpu],
    }


def side_by_side(
    workdir: Path, registry: Path, config: AdsConfig, concurrency: int, seconds: float, rounds: int
) -> dict[str, Any]:
    """(b) and (c) up together, measured in alternating rounds, so drift in the shared
    machine's load falls on both alike (a light-load round follows each); Serve's proxy once.
    Besides what the clients see, each measurement records the CPU the serving process (the
    plain server, or the Serve replica) spent per call: the cost Serve adds, and less
    sensitive than req/s to what else the machine runs."""
    fixed = {"min_replicas": 1, "max_replicas": 1}
    zone = start_ads_zone(workdir / "fixed", zone_config(registry, fixed))
    clients = Clients()
    try:
        with plain_server(config) as (plain, plain_pid):
            direct = zone.wait_endpoints(1)
            replica_pid = listening_pid(int(direct[0].rsplit(":", 1)[1]))
            for target in (plain, *direct):  # warm both paths up
                clients.run([target], concurrency, 2.0)
            b: list[Measured] = []
            c: list[Measured] = []
            light_b: list[Measured] = []
            light_c: list[Measured] = []
            paths = [(b, light_b, [plain], plain_pid), (c, light_c, direct, replica_pid)]
            for i in range(rounds):
                # Which path goes first alternates, so neither always follows the other.
                for full, light, targets, pid in paths if i % 2 == 0 else paths[::-1]:
                    full.append(clients.run(targets, concurrency, seconds, server_pid=pid))
                    light.append(clients.run(targets, LIGHT, seconds / 2, server_pid=pid))
            proxy = clients.run(
                [f"127.0.0.1:{zone.grpc_port}"], concurrency, seconds, (("application", "ads"),)
            )
    finally:
        clients.close()
        zone.stop()
    return {
        "b": pooled(b),
        "c": pooled(c),
        "proxy": summarise(proxy.load),
        "light": {"concurrency": LIGHT, "b": pooled(light_b), "c": pooled(light_c)},
        "paired": paired(b, c),
        "paired_light": paired(light_b, light_c),
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
            "c_over_b_server_cpu_per_call": bc["paired"]["server_cpu_per_call_ratio_median"],
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
