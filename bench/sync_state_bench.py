"""What a small sync batch costs as the dedup state grows.

`dropDuplicatesWithinWatermark` expires ids by reading its whole state store in every batch
with data (`sync_events.dedup_scan`), so a batch's time has a term that grows with the ids of
the last `late_data_horizon_s`, not with the batch. This measures it: for each state size S
(one availableNow run of S landing events fills the state), then `--batches` runs of
`--batch` new events each, timed end to end (`run_available_now`, as `isthmus sync events`
runs it), with the rows the expiry pass read and its task time from the run's report.
One Spark session, warmed up first; results go to bench/results/sync_state.json.

    .venv/bin/python -m bench.sync_state_bench
    .venv/bin/python -m bench.sync_state_bench --sizes 0,1000000 --batch 1000 --batches 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.sync_bench import (
    add_jvm_option,
    jvm_overrides,
    land,
    machine,
    round_spec,
    write_result,
)
from ray_jobs.sync import sync_events
from ray_jobs.sync.config import Locations
from ray_jobs.sync.session import build_session
from tests.support.events import BASE_US, records
from tests.system.spark_world import make_world

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sync_state.json"
EVENTS_PER_FILE = 5000
MINUTE_US = 60_000_000


def measure(
    spark: Any, root: Path, size: int, batch: int, batches: int, **overrides: object
) -> dict[str, Any]:
    """Fill a fresh state with `size` events, then time `batches` small runs on top of it."""
    root.mkdir(parents=True, exist_ok=True)
    world = make_world(root, **overrides)
    spec = round_spec(world, 0)
    locs = Locations.from_spec(spec)
    fill_s = 0.0
    if size:
        land(world, size, max(1, size // EVENTS_PER_FILE), 20_000)
        started = time.perf_counter()
        filled = sync_events.run_available_now(spark, spec, locs)
        fill_s = time.perf_counter() - started
        if filled.landing_lines != size:
            raise SystemExit(f"state {size}: the fill synced {filled.landing_lines} lines")
    seconds: list[float] = []
    scanned: list[int] = []
    scan_ms: list[int] = []
    for k in range(1, batches + 1):
        # Later ingest times than the fill's: what a sync kept running sees.
        world.landing.append(
            records(
                batch, users=["p_small"], seed=k, prefix=f"s{k}-", now_us=BASE_US + k * MINUTE_US
            )
        )
        started = time.perf_counter()
        report = sync_events.run_available_now(spark, spec, locs)
        seconds.append(time.perf_counter() - started)
        if report.landing_lines != batch or report.batches != 1:
            raise SystemExit(f"state {size}, run {k}: {report}")
        scanned.append(report.dedup_rows_scanned)
        scan_ms.append(report.dedup_scan_ms)
    return {
        "state_ids": size,
        "fill_seconds": round(fill_s, 2),
        "small_batch_seconds": [round(s, 2) for s in seconds],
        "small_batch_median_seconds": round(statistics.median(seconds), 2),
        "dedup_rows_scanned": scanned,
        "dedup_scan_ms": scan_ms,
        "dedup_scan_median_ms": statistics.median(scan_ms),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,250000,1000000,2000000")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=3)
    add_jvm_option(parser)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    overrides = jvm_overrides(args)
    with tempfile.TemporaryDirectory(prefix="sync-state-bench-") as tmp:
        warm = make_world(Path(tmp), **overrides)
        spark = build_session(warm.spec, "isthmus-sync-state-bench")
        measure(spark, Path(tmp) / "warm-up", 20_000, args.batch, 2, **overrides)
        rows = []
        for size in sizes:
            root = Path(tmp) / f"state-{size}"
            rows.append(measure(spark, root, size, args.batch, args.batches, **overrides))
            print(json.dumps(rows[-1]), flush=True)
        java_options = warm.spec.driver_java_options
        spark.stop()
    base, top = rows[0], rows[-1]
    grown = top["state_ids"] - base["state_ids"]
    result = {
        "benchmark": "availableNow runs of a few new events on top of a dedup state of "
        "N ids: end-to-end seconds, and the rows and task time of the state's expiry pass",
        "machine": machine(),
        "driver_java_options": java_options,
        "events_per_small_batch": args.batch,
        "states": rows,
        # The slope between the smallest and the largest state: what each million ids kept
        # adds to every batch, on this machine (2 cores, local[2]).
        "added_seconds_per_batch_per_million_ids": round(
            (top["small_batch_median_seconds"] - base["small_batch_median_seconds"]) / grown * 1e6,
            3,
        )
        if grown
        else None,
        "scan_task_ms_per_million_ids": round(
            top["dedup_scan_median_ms"] / max(1, statistics.median(top["dedup_rows_scanned"])) * 1e6
        ),
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
