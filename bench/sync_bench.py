"""sync_events throughput on N landing events, in the same run as two baselines over the same
files: a plain Spark batch job (read the JSON lines with the typed schema -> drop duplicate
event_ids -> parquet; no checks, no quarantine, no exactly-once) and a pyarrow copy (JSON lines
-> parquet, single process). Also the export job's time on the resulting warehouse and the
load average. Results go to bench/results/sync.json.

    .venv/bin/python -m bench.sync_bench --events 1000000
    .venv/bin/python -m bench.sync_bench --events 1000000 --driver-java-options=-XX:+UseSerialGC \
        --out bench/results/sync_c2.json   # the JIT's C2 compiler too (not C1 only)

Both Spark figures exclude session start-up (reported apart) and share one session, warmed up
by the plain job on the first landing file. Then `--rounds` rounds, each the plain job and then
sync_events' availableNow run (one query writing events and quarantine) from a fresh
checkpoint, warehouse and quarantine; the ratio is of the medians. The JIT keeps compiling
over the first rounds, which speeds the plain job up more than the sync (both are listed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.json as pj
import pyarrow.parquet as pq

from ray_jobs.sync import export_features, schema, sync_events
from ray_jobs.sync.config import Locations
from ray_jobs.sync.private_source import read_private
from ray_jobs.sync.session import build_session
from services.topology.model import DataSpec
from tests.support.events import BASE_US, records
from tests.system.spark_world import World, make_world

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


def round_spec(world: World, i: int) -> DataSpec:
    """The world's data spec with a warehouse, quarantine and checkpoint of round `i`'s own."""
    root = world.root / f"round-{i}"
    return world.spec.model_copy(
        update={
            "warehouse_uri": str(root / "warehouse"),
            "quarantine_uri": str(root / "quarantine"),
            "checkpoint_uri": str(root / "checkpoints"),
        }
    )


def summary(seconds: list[float], events: int) -> dict[str, Any]:
    median = statistics.median(seconds)
    return {
        "seconds_per_round": [round(x, 2) for x in seconds],
        "median_seconds": round(median, 2),
        "events_per_s_at_median": round(events / median),
    }


def machine() -> dict[str, Any]:
    """The facts a result is read against: cores, Python, the load at the end of the run."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def add_jvm_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--driver-java-options",
        default=None,
        help="data.driver_java_options for this run (default: the topology default)",
    )


def jvm_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The DataSpec fields `add_jvm_option`'s flag overrides."""
    if args.driver_java_options is None:
        return {}
    return {"driver_java_options": args.driver_java_options}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    add_jvm_option(parser)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    overrides = jvm_overrides(args)
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        world = make_world(Path(tmp), **overrides)
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
        plain_s: list[float] = []
        sync_s: list[float] = []
        for i in range(args.rounds):
            seconds, plain_rows = plain_spark(
                spark, world.locs.landing_files, Path(tmp) / f"plain-{i}"
            )
            plain_s.append(seconds)
            spec = round_spec(world, i)
            locs = Locations.from_spec(spec)
            started = time.perf_counter()
            report = sync_events.run_available_now(spark, spec, locs)
            sync_s.append(time.perf_counter() - started)
            synced = spark.read.parquet(locs.events.uri).count()
            if synced != landed or plain_rows != landed:
                raise SystemExit(f"round {i}: {synced} synced, {plain_rows} plain, {landed} landed")

        inputs = read_private(world.config)
        exported = export_features.export(spark, spec, locs, inputs, BASE_US)
        spark.stop()
    plain, sync = summary(plain_s, landed), summary(sync_s, landed)
    sync_rate, plain_rate = sync["events_per_s_at_median"], plain["events_per_s_at_median"]
    copy_rate = copied / copy_s
    result = {
        "benchmark": "sync_events (availableNow, fresh checkpoint) vs a plain Spark batch job "
        "(read -> dedup -> parquet), alternating in one session, and a pyarrow JSON->parquet "
        "copy; same files, same run",
        "machine": machine(),
        "spark_master": world.spec.spark_master,
        "driver_java_options": world.spec.driver_java_options,
        "rounds": args.rounds,
        "landing": {"events": landed, "files": len(paths), "seconds_to_write": round(land_s, 1)},
        "pyarrow_copy": {
            "rows": copied,
            "seconds": round(copy_s, 2),
            "events_per_s": round(copy_rate),
        },
        "plain_spark_batch": plain,
        "sync_events": {
            **sync,
            "rows_in_warehouse": synced,
            "batches": report.batches,
            "session_start_s": round(session_s, 1),
        },
        # The target: >= 0.7 (the price of streaming, exactly-once and quarantine).
        "ratio_sync_over_plain_spark_batch_events_per_s": round(sync_rate / plain_rate, 3),
        "ratio_sync_over_plain_spark_batch_per_round": [
            round(p / s, 3) for p, s in zip(plain_s, sync_s, strict=True)
        ],
        "ratio_sync_over_pyarrow_events_per_s": round(sync_rate / copy_rate, 3),
        "export_features": {
            "users": exported.row_count,
            "seconds": exported.seconds,
            "segments_kept": exported.segments_kept,
            "segments_suppressed": exported.segments_suppressed,
        },
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
