"""`isthmus demo`: a peak-season day, compressed, through the gateway of a running platform;
then the Spark sync and feature export; then a report (Markdown + PNG) with the evidence.

    isthmus up && isthmus demo [--seconds 150] && isthmus down
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.local import netns
from services.local.plan import CALLERS
from services.local.report import leak_scan, write_report
from services.local.supervisor import RunState, state_path
from services.local.traffic import CallLog, Driver, Shopper
from services.local.up import token_for


@dataclass
class DemoSettings:
    seconds: float = 150.0
    base_rps: float = 5.0  # visits per second at the quiet ends of the day
    peak_factor: float = 10.0
    shoppers: int = 120


@dataclass
class Timeline:
    rows: list[dict[str, Any]] = field(default_factory=list)


def replicas(run_dir: Path) -> int:
    counts = []
    for status in run_dir.glob("*.status.json"):
        try:
            counts.append(int(json.loads(status.read_text())["replicas"].get("RUNNING", 0)))
        except (OSError, ValueError, KeyError):
            continue
    return sum(counts)


def window_stats(log: CallLog, since: float) -> tuple[float, float, float, int]:
    recent = [w for w in log.window if w[0] >= since]
    span = max(1e-9, (log.window[-1][0] - since) if recent else 1.0)
    oks = sorted(w[1] for w in recent if w[2])
    errors = sum(1 for w in recent if not w[2])
    if not oks:
        return 0.0, 0.0, 0.0, errors
    p50 = statistics.median(oks) * 1000
    p99 = oks[min(len(oks) - 1, int(len(oks) * 0.99))] * 1000
    return len(recent) / span, p50, p99, errors


async def drive(
    state: RunState, run_dir: Path, settings: DemoSettings, timeline: Timeline
) -> tuple[CallLog, list[Shopper]]:
    tokens = {name: token_for(run_dir, name) for name in CALLERS}
    driver = Driver(state.gateway, tokens)
    try:
        print(f"onboarding {settings.shoppers} shoppers (SENSITIVE calls, private zone) ...")
        shoppers = await driver.onboard(settings.shoppers)
        print(f"  {len(shoppers)} shoppers have a pseudonymous id")
        print(
            f"peak-season day in {settings.seconds:.0f}s: {settings.base_rps:g} -> "
            f"{settings.base_rps * settings.peak_factor:g} visits/s and back"
        )
        header = ("t", "visits/s", "calls/s", "p50 ms", "p99 ms", "replicas", "errors")
        print("{:>5} {:>8} {:>8} {:>7} {:>7} {:>8} {:>6}".format(*header))

        def tick(t: float, rate: float) -> None:
            calls_s, p50, p99, errors = window_stats(driver.log, t - 2.0)
            row = {
                "t_s": round(t, 1),
                "visits_per_s": round(rate, 2),
                "calls_per_s": round(calls_s, 1),
                "p50_ms": round(p50, 2),
                "p99_ms": round(p99, 2),
                "replicas": replicas(run_dir),
                "errors": errors,
            }
            timeline.rows.append(row)
            if int(t) % 5 == 0:
                print(
                    f"{t:5.0f} {rate:8.1f} {calls_s:8.1f} {p50:7.1f} {p99:7.1f} "
                    f"{row['replicas']:8d} {errors:6d}",
                    flush=True,
                )

        await driver.peak_day(
            shoppers, settings.seconds, settings.base_rps, settings.peak_factor, tick
        )
        return driver.log, shoppers
    finally:
        await driver.close()


def sync_command(state: RunState, run_dir: Path, job: str) -> list[str]:
    """`isthmus sync JOB` as the private zone runs it (in its namespace when isolated)."""
    ns = None
    if state.isolated:
        ns = next((n for n in state.namespaces if n.endswith("-private")), None)
    return [
        *netns.exec_prefix(ns),
        sys.executable,
        "-m",
        "services.cli",
        "sync",
        job,
        "--topology",
        str(run_dir / "topology.yaml"),
        "--private-config",
        str(run_dir / "private.yaml"),
    ]


def run_sync(state: RunState, run_dir: Path, job: str) -> dict[str, Any]:
    """One Spark job in the private zone (its namespace when isolated)."""
    command = sync_command(state, run_dir, job)
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    (run_dir / "logs" / f"sync-{job}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"isthmus sync {job} failed; see {run_dir / 'logs'}/sync-{job}.log")
    last = [line for line in done.stdout.splitlines() if line.startswith("{")][-1]
    result: dict[str, Any] = json.loads(last)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def prune_synced_landing(run_dir: Path) -> int:
    """Landing files the sync has committed are gone from the public zone after
    the scan, so repeated runs do not grow what every later run scans."""
    from ray_jobs.sync.config import Locations
    from ray_jobs.sync.prune import prune_landing
    from services.topology import load_topology

    locs = Locations.from_spec(load_topology(run_dir / "topology.yaml").data)
    checkpoints = [locs.sync_checkpoint.path]
    return prune_landing(locs.landing.path, checkpoints)


def demo(run_dir: Path, settings: DemoSettings, report_dir: Path) -> dict[str, Any]:
    run_dir = run_dir.resolve()
    path = state_path(run_dir)
    if not path.exists():
        raise RuntimeError("the platform is not up; run `isthmus up` first")
    state = RunState.load(path)
    timeline = Timeline()
    log, shoppers = asyncio.run(drive(state, run_dir, settings, timeline))
    print("syncing events to the private warehouse (Spark) ...")
    synced = run_sync(state, run_dir, "events")
    print(f"  {synced}")
    print("exporting de-identified features to the public zone (Spark) ...")
    exported = run_sync(state, run_dir, "features")
    print(f"  {exported}")
    leaks = leak_scan(run_dir, shoppers)
    pruned = prune_synced_landing(run_dir)
    print(f"pruned {pruned} landing files the sync has committed (the scan read them first)")
    summary = write_report(
        report_dir, run_dir, settings, log, timeline.rows, synced, exported, leaks
    )
    return summary
