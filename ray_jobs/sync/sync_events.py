"""sync_events: the public landing log -> the private warehouse, exactly once.

One Structured Streaming query reads the landing files (`date=*/hour=*/*.jsonl`) as text and
parses each line once; its `foreachBatch` writes every micro-batch to two tables, each through
Spark's own file sink (`sinks.ParquetSink`):

- events: lines that pass every rule in `schema.FIELDS`, typed, minus erased users, minus
  replayed `event_id`s, into `<warehouse>/events/` (parquet, partitioned by `event_date`);
- quarantine: lines that fail a rule, with the reason and the source file, into
  `<quarantine>/`.

Exactly once: the file source records which files each batch read (offsets log, in the one
checkpoint); each table's sink commits a batch's part files in its `_spark_metadata` log
under the query's batch id and skips a batch id it already has. A batch killed midway is
re-run from the same files after restart: a table that committed it writes nothing, the other
writes it, and files written but not committed are ignored. So readers must read the tables
through Spark (or `sinklog.live_files`), never by listing the directory.

Duplicates: the landing log is at-least-once (a crash can write a client's replay twice), so
`dropDuplicatesWithinWatermark` runs on the event id with a watermark on the ingest time.
The trade-off: exact dedup over all history keeps one state entry per event forever
(unbounded checkpoint); a watermark bounds the state to the ids seen within
`late_data_horizon_s` (7 days by default) -- a replay is dropped when it lands within that
horizon of the first copy, and a line whose ingest time is already older than the watermark
(max ingest time seen minus the horizon) would be dropped as late. Landing files get their
ingest time when they are written and are read in modification-time order, so that only
happens to files copied in more than a horizon late; the file source's `maxFileAge` is set to
the same horizon.

Quarantined lines pass the same operator under a key of their own (`\0`, the source file,
`\0`, the line's SHA-256; no event id can hold `\0`) and with no ingest time: they are never
late, never move the watermark, and their state entries expire at the next batch. A line
repeated verbatim within one landing file is quarantined once.

Cost: a micro-batch is parsed, judged and deduplicated once, then written to events. The
quarantine write runs only for a batch that has quarantined lines (the events write counts
them); it evaluates the batch a second time, which Spark allows for `foreachBatch` (same
input, same state version) -- rare lines, so no cache of every batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ray_jobs.sync import schema
from ray_jobs.sync.config import Locations
from ray_jobs.sync.judge import judged_lines
from services.topology.model import DataSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming.query import StreamingQuery

log = logging.getLogger(__name__)

MIN_PAUSE_S = 1.0  # the warehouse lock stays free at least this long between runs
QUERY = "sync_events"
QUARANTINED = "quarantined"  # the observed metric: quarantined lines in a batch


@dataclass(frozen=True)
class SyncReport:
    """What one availableNow run did (from the query's progress and its batch writer)."""

    batches: int
    landing_lines: int
    quarantine_batches: int
    pruned_files: int = 0  # landing files deleted after the run (`prune=True`)
    # What the dedup state's expiry pass read and the task time it took (`dedup_scan`): the
    # whole state, once per evaluation of each batch with data.
    dedup_rows_scanned: int = 0
    dedup_scan_ms: int = 0


def dedup_scan(progress: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """Rows the dedup operator read to expire ids, and the time it took (summed over the
    tasks), over a run's progress reports (pure).

    `dropDuplicatesWithinWatermark` finds expired ids by reading its whole state store in
    every batch with data (Spark 4.3; its state is keyed by id, not by time). So a batch's
    cost has a term that grows with the state, i.e. with the ids of the last
    `late_data_horizon_s`, however few lines the batch holds: a sync kept running at peak
    volume should run few large batches, not many small ones (README, Data sync)."""
    rows = ms = 0
    for report in progress:
        for operator in report.get("stateOperators") or []:
            rows += int((operator.get("customMetrics") or {}).get("numRowsReadDuringEviction", 0))
            ms += int(operator.get("allRemovalsTimeMs", 0))
    return rows, ms


def deduplicated(judged: DataFrame, spec: DataSpec) -> DataFrame:
    return judged.withWatermark(
        "_ingest_ts", f"{spec.late_data_horizon_s} seconds"
    ).dropDuplicatesWithinWatermark(["_key"])


def erased_ids(spark: SparkSession, locs: Locations) -> DataFrame:
    """Pseudonymous ids erased in the private zone (see `erasure.py`); empty before any."""
    from pyspark.errors import AnalysisException

    try:
        return spark.read.parquet(locs.erasures.uri).select("pseudonymous_user_id")
    except AnalysisException:  # no erasure exported yet
        return empty_ids(spark)


def empty_ids(spark: SparkSession) -> DataFrame:
    """An empty id column built in the JVM (`createDataFrame([])` would start Python
    workers for every micro-batch that joins it)."""
    from pyspark.sql import functions as F

    return spark.range(0).select(F.lit(None).cast("string").alias("pseudonymous_user_id"))


def quarantine_step(events_ran: bool, quarantined: int | None, has_it: bool) -> str:
    """What the quarantine table does with a batch (pure): "skip" (it has the batch),
    "empty" (the events write ran and counted no quarantined line: commit no file), or
    "write" (it has lines, or the count is unknown because the events table had the batch)."""
    if has_it:
        return "skip"
    if events_ran and quarantined == 0:
        return "empty"
    return "write"


@dataclass
class BatchWriter:
    """The query's `foreachBatch`: each micro-batch to the events table, then to the
    quarantine table (`quarantine_step`), both under the query's batch id."""

    spark: SparkSession
    locs: Locations
    quarantine_batches: int = 0
    _sinks: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        from ray_jobs.sync.sinks import ParquetSink

        self._sinks = {
            "events": ParquetSink(
                self.spark, self.locs.events.uri, ["event_date"], schema.EVENTS_WRITE_OPTIONS
            ),
            "quarantine": ParquetSink(self.spark, self.locs.quarantine.uri, []),
        }

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        from pyspark.sql import functions as F

        events, quarantine = self._sinks["events"], self._sinks["quarantine"]
        events_ran = not events.committed(batch_id)  # else: a re-run after a crash
        quarantined = None
        if events_ran:
            counted = batch.observe(
                QUARANTINED, F.count_if(F.col("reason").isNotNull()).alias(QUARANTINED)
            )
            good = counted.where(F.col("reason").isNull()).join(
                F.broadcast(erased_ids(self.spark, self.locs)), "pseudonymous_user_id", "left_anti"
            )
            frame = good.select(*schema.FIELD_NAMES, *(n for n, _ in schema.WAREHOUSE_EXTRA))
            events.add_batch(batch_id, frame)
            quarantined = observed(frame, QUARANTINED)
        step = quarantine_step(events_ran, quarantined, quarantine.committed(batch_id))
        if step == "skip" and not events_ran:
            # Both tables have the batch (a crash after their commits, before the query's):
            # the batch must still run once, or Spark's check that the dedup state of every
            # partition was committed fails the query. The rows go nowhere.
            batch.write.format("noop").mode("overwrite").save()
        elif step == "empty":
            quarantine.add_empty_batch(batch_id)
        elif step == "write":
            bad = batch.where(F.col("reason").isNotNull()).select(
                *(n for n, _ in schema.QUARANTINE_COLUMNS)
            )
            quarantine.add_batch(batch_id, bad)
            self.quarantine_batches += 1


def observed(frame: DataFrame, name: str) -> int | None:
    """A metric `observe` collected while `frame`'s plan ran (None when the plan has no such
    metric). Only read after the plan ran: a plan that did not run reads 0."""
    metrics = frame._jdf.queryExecution().observedMetrics()
    if not metrics.contains(name):
        return None
    return int(metrics.apply(name).getLong(0))


def start(
    spark: SparkSession, spec: DataSpec, locs: Locations
) -> tuple[StreamingQuery, BatchWriter]:
    """Start the query, availableNow: process what is there, then stop."""
    writer = BatchWriter(spark, locs)
    query = (
        deduplicated(judged_lines(spark, spec, locs), spec)
        .writeStream.queryName(QUERY)
        .option("checkpointLocation", locs.sync_checkpoint.uri)
        .foreachBatch(writer)
        .trigger(availableNow=True)
        .start()
    )
    return query, writer


def run_available_now(
    spark: SparkSession,
    spec: DataSpec,
    locs: Locations,
    stopping: threading.Event | None = None,
    prune: bool = False,
) -> SyncReport:
    """Process every landing file not yet synced, then return; refuses (CheckpointMismatch)
    a checkpoint that does not belong with the tables. When `stopping` is set, the
    query was stopped on purpose: a batch cut short by the stop (its job cancelled inside
    `foreachBatch`) is not a failure -- nothing of it was committed, the next run redoes it.
    `prune`: then delete the landing files the sync has committed (`prune.prune_landing`)."""
    from ray_jobs.sync import checkpoint_guard, completeness, source_log
    from ray_jobs.sync.prune import committed_batches, prune_landing

    local = locs.landing.is_local and locs.sync_checkpoint.is_local
    checkpoints = [locs.sync_checkpoint.path] if local else []
    if locs.sync_checkpoint.is_local and locs.events.is_local and locs.quarantine.is_local:
        tables = {"events": locs.events.path, "quarantine": locs.quarantine.path}
        checkpoint_guard.check(locs.sync_checkpoint.path, tables)
    if prune and not local:
        log.warning("prune: not built for a landing or checkpoint in object storage; skipped")
    completeness.reland(checkpoints)
    for checkpoint in checkpoints:  # no query runs now: the file source's log can shrink
        source_log.trim(checkpoint, locs.landing.path, spec.late_data_horizon_s)
    before = {c: committed_batches(c) for c in checkpoints}
    query, writer = start(spark, spec, locs)
    failure: Exception | None = None
    try:
        query.awaitTermination()
    except Exception as exc:  # re-raised below, after the check
        failure = exc
    # Even when the query failed, it may have committed a batch that skipped files.
    # Also a batch an earlier run committed but was killed before checking.
    completeness.check(
        {c: completeness.unchecked(c, committed_batches(c), before[c]) for c in checkpoints}
    )
    if failure is not None and not (stopping is not None and stopping.is_set()):
        raise failure
    progress = query.recentProgress
    scanned, scan_ms = dedup_scan(progress)
    return SyncReport(
        batches=sum(1 for p in progress if p["numInputRows"] > 0),
        landing_lines=sum(int(p["numInputRows"]) for p in progress),
        quarantine_batches=writer.quarantine_batches,
        pruned_files=prune_landing(locs.landing.path, checkpoints) if prune and local else 0,
        dedup_rows_scanned=scanned,
        dedup_scan_ms=scan_ms,
    )


def run_continuously(
    spark: SparkSession,
    spec: DataSpec,
    locs: Locations,
    interval_s: float,
    stopping: threading.Event,
    lock: Callable[[], AbstractContextManager[None]],
    on_run: Callable[[SyncReport], object] = lambda _report: None,
    prune: bool = False,
) -> None:
    """The sync kept running: availableNow runs back to back in one session (one JVM, warm),
    one starting every `interval_s` at most, until `stopping` is set (a run under way is
    stopped by stopping its query: exactly once, a half batch is never committed).

    Runs rather than one never-ending query, because each run rebuilds the query (the
    erasures recorded meanwhile apply from the next run; a static side read once would go
    stale), runs the completeness check and trims the file source's log (`source_log`)
    like any run, and holds the warehouse `lock` only
    while it runs: an `erase` waiting for it gets in at a run's boundary. The pause between
    runs is at least MIN_PAUSE_S, so a waiting erase always gets its turn.

    `stopping` may be set from a signal handler: a thread of its own stops the query
    (calls into the JVM from a handler would re-enter the main thread's py4j connection)."""

    def stopper() -> None:
        stopping.wait()
        stop_active(spark)

    threading.Thread(target=stopper, name="sync-stopper", daemon=True).start()
    while not stopping.is_set():
        started = time.monotonic()
        with lock():
            if stopping.is_set():
                break
            report = run_available_now(spark, spec, locs, stopping, prune)
        on_run(report)
        stopping.wait(max(MIN_PAUSE_S, interval_s - (time.monotonic() - started)))


def stop_active(spark: SparkSession) -> None:
    """Stop the session's running query (it finishes or drops its micro-batch; a dropped one
    is re-run from the same files by the next start)."""
    for query in spark.streams.active:
        query.stop()


def quarantine_counts(spark: SparkSession, locs: Locations) -> dict[str, int]:
    """Quarantined lines by reason, over the whole quarantine table (read through Spark)."""
    from pyspark.errors import AnalysisException

    try:
        rows = spark.read.parquet(locs.quarantine.uri).groupBy("reason").count().collect()
    except AnalysisException:
        return {}
    return {str(r["reason"]): int(r["count"]) for r in rows}
