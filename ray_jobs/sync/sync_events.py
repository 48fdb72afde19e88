"""sync_events: the public landing log -> the private warehouse, exactly once.

Two Structured Streaming queries read the same landing files (`date=*/hour=*/*.jsonl`) as
text, each with its own checkpoint and its own file sink:

- events: lines that pass every rule in `schema.FIELDS`, typed, minus erased users, minus
  replayed `event_id`s, into `<warehouse>/events/` (parquet, partitioned by `event_date`);
- quarantine: lines that fail a rule, with the reason and the source file, into
  `<quarantine>/`.

Exactly once: the file source records which files each batch read (offsets log) and the
file sink commits a batch's part files in its `_spark_metadata` log; a batch killed midway is
re-run from the same files after restart, and the sink ignores the files it had written but
not committed. So readers must read the sink through Spark (or `sinklog.live_files`), never
by listing the directory.

Duplicates: the landing log is at-least-once (a crash can write a client's replay twice),
so `dropDuplicatesWithinWatermark(["event_id"])` runs with a watermark on the ingest time.
The trade-off: exact dedup over all history keeps one state entry per event forever
(unbounded checkpoint); a watermark bounds the state to the ids seen within
`late_data_horizon_s` (7 days by default) -- a replay is dropped when it lands within that
horizon of the first copy, and a line whose ingest time is already older than the watermark
(max ingest time seen minus the horizon) would be dropped as late. Landing files get their
ingest time when they are written and are read in modification-time order, so that only
happens to files copied in more than a horizon late; the file source's `maxFileAge` is set to
the same horizon.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ray_jobs.sync import schema
from ray_jobs.sync.config import Locations
from services.topology.model import DataSpec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.streaming.query import StreamingQuery

log = logging.getLogger(__name__)

MIN_PAUSE_S = 1.0  # the warehouse lock stays free at least this long between runs
EVENTS_QUERY = "sync_events"
QUARANTINE_QUERY = "sync_quarantine"


@dataclass(frozen=True)
class SyncReport:
    """What one availableNow run did (from the queries' progress reports)."""

    batches: int
    landing_lines: int
    quarantine_batches: int


def raw_schema() -> str:
    """DDL of the parse schema: every field as text, plus the corrupt-record column."""
    return ", ".join([f"`{name}` STRING" for name in schema.FIELD_NAMES] + ["_corrupt STRING"])


def _landing_lines(spark: SparkSession, spec: DataSpec, locs: Locations) -> DataFrame:
    from pyspark.sql import functions as F

    lines = (
        spark.readStream.format("text")
        .option("maxFilesPerTrigger", spec.max_files_per_trigger)
        .option("maxFileAge", f"{spec.late_data_horizon_s}s")
        .load(locs.landing_files)
    )
    parsed = F.from_json("value", raw_schema(), {"columnNameOfCorruptRecord": "_corrupt"})
    return lines.select(
        F.col("value").alias("line"),
        F.col("_metadata.file_path").alias("source_file"),
        parsed.alias("r"),
    )


def reason_column() -> Column:
    """The first rule a parsed line breaks (as in `schema.first_problem`), or null."""
    from pyspark.sql import functions as F

    checks = [
        (F.col("r").isNull() | F.col("r._corrupt").isNotNull(), schema.REASON_NOT_JSON),
    ]
    for rule in schema.FIELDS:
        value = F.col(f"r.`{rule.name}`")
        if rule.required:
            checks.append((value.isNull(), rule.missing_reason))
        bad = value.isNotNull() & ~value.rlike(schema.java_pattern(rule))
        checks.append((bad, rule.invalid_reason))
    reason: Column = F.lit(None).cast("string")
    for condition, text in reversed(checks):
        reason = F.when(condition, F.lit(text)).otherwise(reason)
    return reason


def _typed(judged: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    columns = [F.col(f"r.`{r.name}`").cast(r.spark_type).alias(r.name) for r in schema.FIELDS]
    event_date = F.to_date(F.timestamp_micros(F.col("r.event_time_us").cast("bigint")))
    return judged.select(*columns, event_date.alias("event_date"), "source_file")


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


def events_frame(spark: SparkSession, spec: DataSpec, locs: Locations) -> DataFrame:
    """Good lines, typed, minus erased users, deduplicated on event_id across batches."""
    from pyspark.sql import functions as F

    judged = _landing_lines(spark, spec, locs).withColumn("reason", reason_column())
    good = _typed(judged.where(F.col("reason").isNull()))
    kept = good.join(F.broadcast(erased_ids(spark, locs)), "pseudonymous_user_id", "left_anti")
    deduped = (
        kept.withColumn("_ingest_ts", F.timestamp_micros("ingest_time_us"))
        .withWatermark("_ingest_ts", f"{spec.late_data_horizon_s} seconds")
        .dropDuplicatesWithinWatermark(["event_id"])
    )
    return deduped.select(*schema.FIELD_NAMES, *(n for n, _ in schema.WAREHOUSE_EXTRA))


def quarantine_frame(spark: SparkSession, spec: DataSpec, locs: Locations) -> DataFrame:
    from pyspark.sql import functions as F

    judged = _landing_lines(spark, spec, locs).withColumn("reason", reason_column())
    return judged.where(F.col("reason").isNotNull()).select(
        "source_file",
        F.substring("line", 1, schema.MAX_QUARANTINED_LINE).alias("line"),
        "reason",
    )


def start(spark: SparkSession, spec: DataSpec, locs: Locations) -> list[StreamingQuery]:
    """Start both queries, availableNow: process what is there, then stop."""
    plans = [
        (EVENTS_QUERY, events_frame(spark, spec, locs), locs.events, locs.events_checkpoint),
        (
            QUARANTINE_QUERY,
            quarantine_frame(spark, spec, locs),
            locs.quarantine,
            locs.quarantine_checkpoint,
        ),
    ]
    queries = []
    for name, frame, sink, checkpoint in plans:
        writer = (
            frame.writeStream.queryName(name)
            .format("parquet")
            .outputMode("append")
            .option("path", sink.uri)
            .option("checkpointLocation", checkpoint.uri)
        )
        if name == EVENTS_QUERY:
            writer = writer.partitionBy("event_date")
        queries.append(writer.trigger(availableNow=True).start())
    return queries


def run_available_now(spark: SparkSession, spec: DataSpec, locs: Locations) -> SyncReport:
    """Process every landing file not yet synced, then return."""
    from ray_jobs.sync import completeness
    from ray_jobs.sync.prune import committed_batches

    local = locs.landing.is_local and locs.events_checkpoint.is_local
    checkpoints = [locs.events_checkpoint.path, locs.quarantine_checkpoint.path] if local else []
    completeness.reland(checkpoints)
    before = {c: committed_batches(c) for c in checkpoints}
    events, quarantine = start(spark, spec, locs)
    failure: Exception | None = None
    for query in (events, quarantine):
        try:
            query.awaitTermination()
        except Exception as exc:  # re-raised below, after the check
            failure = failure or exc
    # Even when one query failed, the other may have committed a batch that skipped files.
    completeness.check({c: committed_batches(c) - before[c] for c in checkpoints})
    if failure is not None:
        raise failure
    progress = events.recentProgress
    return SyncReport(
        batches=sum(1 for p in progress if p["numInputRows"] > 0),
        landing_lines=sum(int(p["numInputRows"]) for p in progress),
        quarantine_batches=sum(1 for p in quarantine.recentProgress if p["numInputRows"] > 0),
    )


def run_continuously(
    spark: SparkSession,
    spec: DataSpec,
    locs: Locations,
    interval_s: float,
    stopping: threading.Event,
    lock: Callable[[], AbstractContextManager[None]],
    on_run: Callable[[SyncReport], object] = lambda _report: None,
) -> None:
    """The sync kept running: availableNow runs back to back in one session (one JVM, warm),
    one starting every `interval_s` at most, until `stopping` is set (a run under way is
    stopped by stopping its queries: exactly once, a half batch is never committed).

    Runs rather than one never-ending query, because each run rebuilds the queries (the
    erasures recorded meanwhile apply from the next run; a static side read once would go
    stale), runs the completeness check like any run, and holds the warehouse `lock` only
    while it runs: an `erase` waiting for it gets in at a run's boundary. The pause between
    runs is at least MIN_PAUSE_S, so a waiting erase always gets its turn.

    `stopping` may be set from a signal handler: a thread of its own stops the queries
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
            report = run_available_now(spark, spec, locs)
        on_run(report)
        stopping.wait(max(MIN_PAUSE_S, interval_s - (time.monotonic() - started)))


def stop_active(spark: SparkSession) -> None:
    """Stop the session's running queries (each finishes or drops its micro-batch; a dropped
    one is re-run from the same files by the next start)."""
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
