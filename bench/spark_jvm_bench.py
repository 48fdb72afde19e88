"""The sync's driver JVM options (`data.driver_java_options`) side by side: the default
(C1 only, serial GC) against the JVM's own defaults (C2 and G1), in the same run, alternating.

Each run is the real CLI, `python -m ray_jobs.sync events`, as a fresh process on a fresh
checkpoint, so JVM start-up and warm-up count -- the cost a short availableNow run pays.
Two landing logs: a small one (start-up dominates) and a large one (processing dominates).
Results (medians and every run's wall time) go to bench/results/spark_jvm.json.

    .venv/bin/python -m bench.spark_jvm_bench --repeats 3
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
from pathlib import Path
from typing import Any

from tests.system.spark_world import World, make_world

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "spark_jvm.json"
OPTIONS = {
    "default (C1 only, serial GC)": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "baseline (JVM defaults: C2, G1)": "",
}


def landing(root: Path, events: int, files: int) -> World:
    """A world whose landing log holds `events` events in `files` files."""
    from bench.sync_bench import land

    world = make_world(root)
    land(world, events, files, users=500)
    return world


def one_run(world: World, java_options: str) -> float:
    """Wall seconds of one `sync events` run on a fresh checkpoint and warehouse."""
    for name in ("warehouse", "quarantine", "checkpoints"):  # make_world's directories
        shutil.rmtree(world.root / name, ignore_errors=True)
    world.spec = world.spec.model_copy(update={"driver_java_options": java_options})
    topology = world.write_topology()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ray_jobs.sync", "events", "--topology", str(topology)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small-files", type=int, default=10)
    parser.add_argument("--large-events", type=int, default=300_000)
    args = parser.parse_args()
    sizes = {
        f"{args.small_files} files, 1 event each": (args.small_files, args.small_files),
        f"{args.large_events} events in 100 files": (args.large_events, 100),
    }
    runs: dict[str, dict[str, list[float]]] = {s: {o: [] for o in OPTIONS} for s in sizes}
    with tempfile.TemporaryDirectory(prefix="spark-jvm-bench-") as tmp:
        for size, (events, files) in sizes.items():
            world = landing(Path(tmp) / str(files), events, files)
            for _ in range(args.repeats):
                for label, options in OPTIONS.items():
                    runs[size][label].append(round(one_run(world, options), 2))
    load = os.getloadavg()
    result: dict[str, Any] = {
        "benchmark": "isthmus sync events (fresh process and checkpoint): driver JVM options",
        "options": OPTIONS,
        "machine": {"cpus": os.cpu_count(), "load_average_after": [round(x, 2) for x in load]},
        "repeats": args.repeats,
        "sizes": {},
    }
    default, baseline = list(OPTIONS)
    for size, by_option in runs.items():
        medians = {o: statistics.median(v) for o, v in by_option.items()}
        result["sizes"][size] = {
            "median_wall_s": medians,
            "runs_wall_s": by_option,
            "ratio_default_over_baseline": round(medians[default] / medians[baseline], 3),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
