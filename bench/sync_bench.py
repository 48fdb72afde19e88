"""sync_events throughput on N landing events, in the same run as two baselines over the same
files: a plain Spark batch job (read the JSON lines with the typed schema -> drop duplicate
event_ids -> parquet; no checks, no quarantine, no exactly-once) and a pyarrow copy (JSON lines
-> parquet, single process). Also the export job's time on the resulting warehouse and the
load average. Results go to bench/results/sync.json.

    .venv/bin/python -m bench.sync_bench --events 1000000

Both Spark figures exclude session start-up (reported apart) and share one session, warmed up
by the plain job on the first landing file; then the plain job runs, then sync_events' availableNow
run (one query writing events and quarantine) from a fresh checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.json as pj
import pyarrow.parquet as pq

from ray_jobs.sync import export_features, schema, sync_events
from ray_jobs.sync.private_source import read_private
from ray_jobs.sync.session import build_session
from tests.support.events import BASE_US, records
from tests.system.spark_world import make_world

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sync.json"


def land(world: Any, events: int, files: int, users: int) -> list[Path]:
    pseudonyms = [p.pseudonym for p in world.people] + [f"p_bench{i}" for i in range(users)]
    per_file = events // files
    return [
        world.landing.append(
            records(per_file, users=pseudonyms, seed=i, prefix=f"b{i}-", now_us=BASE_US)
        )
        for i in range(files)
    ]


def pyarrow_copy(paths: list[Path], out: Path) -> tuple[float, int]:
    out.mkdir()
    started = time.perf_counter()
    rows = 0
    for i, path in enumerate(paths):
        table = pj.read_json(path)
        pq.write_table(table, out / f"part-{i:05d}.parquet", compression="snappy")
        rows += table.num_rows
    return time.perf_counter() - started, rows


def plain_spark(spark: Any, landing_files: str, out: Path) -> tuple[float, int]:
    """The baseline the sync is measured against: read -> dedup -> parquet, as a batch."""
    ddl = ", ".join(f"`{f.name}` {f.spark_type.upper()}" for f in schema.FIELDS)
    started = time.perf_counter()
    frame = spark.read.schema(ddl).json(landing_files).dropDuplicates(["event_id"])
    frame.write.parquet(out.as_uri())
    seconds = time.perf_counter() - started
    return seconds, spark.read.parquet(out.as_uri()).count()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        world = make_world(Path(tmp))
        started = time.perf_counter()
        paths = land(world, args.events, args.files, args.users)
        landed = sum(1 for p in paths for _ in p.open())
        land_s = time.perf_counter() - started
        copy_s, copied = pyarrow_copy(paths, Path(tmp) / "copy")

        started = time.perf_counter()
        spark = build_session(world.spec, "isthmus-sync-bench")
        session_s = time.perf_counter() - started
        # Warm the JVM (JIT, classes) on a few files first, so the first timed job, the
        # baseline, does not pay for it and flatter the sync's ratio.
        plain_spark(spark, str(paths[0]), Path(tmp) / "warm-up")
        plain_s, plain_rows = plain_spark(spark, world.locs.landing_files, Path(tmp) / "plain")
        started = time.perf_counter()
        report = sync_events.run_available_now(spark, world.spec, world.locs)
        sync_s = time.perf_counter() - started
        synced = spark.read.parquet(world.locs.events.uri).count()

        inputs = read_private(world.config)
        exported = export_features.export(spark, world.spec, world.locs, inputs, BASE_US)
        spark.stop()
    sync_rate, plain_rate, copy_rate = landed / sync_s, landed / plain_s, copied / copy_s
    result = {
        "benchmark": "sync_events (availableNow, fresh checkpoint) vs a plain Spark batch job "
        "(read -> dedup -> parquet) and a pyarrow JSON->parquet copy, same files, same run",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "spark_master": world.spec.spark_master,
        "landing": {"events": landed, "files": len(paths), "seconds_to_write": round(land_s, 1)},
        "pyarrow_copy": {
            "rows": copied,
            "seconds": round(copy_s, 2),
            "events_per_s": round(copy_rate),
        },
        "plain_spark_batch": {
            "rows": plain_rows,
            "seconds": round(plain_s, 2),
            "events_per_s": round(plain_rate),
        },
        "sync_events": {
            "rows_in_warehouse": synced,
            "batches": report.batches,
            "seconds": round(sync_s, 2),
            "events_per_s": round(sync_rate),
            "session_start_s": round(session_s, 1),
        },
        # The target: >= 0.7 (the price of streaming, exactly-once and quarantine).
        "ratio_sync_over_plain_spark_batch_events_per_s": round(sync_rate / plain_rate, 3),
        "ratio_sync_over_pyarrow_events_per_s": round(sync_rate / copy_rate, 3),
        "export_features": {
            "users": exported.row_count,
            "seconds": exported.seconds,
            "segments_kept": exported.segments_kept,
            "segments_suppressed": exported.segments_suppressed,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
