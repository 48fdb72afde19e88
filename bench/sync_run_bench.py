"""What one sync run costs whatever its size: the fixed part a continuous sync pays every
run. availableNow runs over a few small landing files (event times within the last hour, as
events land in production), each from a fresh checkpoint, warehouse and quarantine, in one
warm session, alternating:

- "judge built once": as shipped, the judge's columns built once per JVM (`judge.stages`);
- "judge rebuilt": the cache cleared before the run, so the run builds them again, as every
  run did before (some hundreds of py4j calls).

    .venv/bin/python -m bench.sync_run_bench [--events 20000] [--files 20] [--rounds 6]

Results go to bench/results/sync_run.json: per-run seconds, medians, their ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.sync_bench import add_jvm_option, jvm_overrides, machine, round_spec, write_result
from ray_jobs.sync import judge, sync_events
from ray_jobs.sync.config import Locations
from ray_jobs.sync.session import build_session
from services.topology.model import DataSpec
from tests.support.events import BASE_US, records
from tests.system.spark_world import World, make_world

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sync_run.json"
HOUR_US = 3_600_000_000
VARIANTS = ("judge built once", "judge rebuilt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=6)
    add_jvm_option(parser)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sync-run-bench-") as tmp:
        world = make_world(Path(tmp), **jvm_overrides(args))
        users = [f"p_bench{i}" for i in range(2_000)]
        for i in range(args.files):
            batch = records(args.events // args.files, users=users, seed=i, prefix=f"r{i}-")
            rng = random.Random(i)
            for rec in batch:
                rec["event_time_us"] = BASE_US - rng.randrange(HOUR_US)
            world.landing.append(batch)
        spark = build_session(world.spec, "isthmus-sync-run-bench")
        seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
        # One run first: JVM warm-up (classes, JIT) is not what either variant measures.
        sync_events.run_available_now(spark, *_fresh(world, -1))
        for i in range(args.rounds):
            for name in VARIANTS:
                if name == "judge rebuilt":
                    judge._BUILT.clear()
                spec, locs = _fresh(world, 2 * i + VARIANTS.index(name))
                started = time.perf_counter()
                report = sync_events.run_available_now(spark, spec, locs)
                seconds[name].append(time.perf_counter() - started)
                if report.landing_lines != args.events // args.files * args.files:
                    raise SystemExit(f"{name}: {report.landing_lines} lines synced")
        spark.stop()
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    write_result(
        args.out,
        {
            "benchmark": "one availableNow sync run of a few small files, fresh checkpoint, "
            "warm session: judge built once per JVM vs rebuilt every run, alternating",
            "machine": machine(),
            "driver_java_options": world.spec.driver_java_options,
            "events": args.events,
            "files": args.files,
            "rounds": args.rounds,
            "seconds_per_run": {k: [round(x, 2) for x in v] for k, v in seconds.items()},
            "median_seconds": {k: round(v, 2) for k, v in medians.items()},
            "ratio_built_once_over_rebuilt": round(
                medians["judge built once"] / medians["judge rebuilt"], 3
            ),
        },
    )
    return 0


def _fresh(world: World, i: int) -> tuple[DataSpec, Locations]:
    spec = round_spec(world, i)
    return spec, Locations.from_spec(spec)


if __name__ == "__main__":
    raise SystemExit(main())
