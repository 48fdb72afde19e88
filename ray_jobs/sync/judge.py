"""How the sync reads and judges landing lines in Spark (column expressions; no I/O beyond
the streaming read).

Each line is parsed once with every field as text, so a malformed line gets a reason that
names the field instead of silently becoming nulls. A good line is accepted by one regular
expression over its fields joined (`schema.whole_line_pattern`); only a line that fails it is
judged rule by rule (`reason_column`), exactly as `schema.first_problem` judges it.

Measured on 1M lines (bench/README.md): this judging costs about 20 s on two cores, of which
the text parse (`from_json` on each line) is 12-13 s; Spark's JSON data source parses the
same lines with the typed schema in 7-9 s. A typed-parse fast path (typed `from_json`, range
checks, text fallback) measured the same 20 s, so it was not kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ray_jobs.sync import schema
from ray_jobs.sync.config import Locations
from services.topology.model import DataSpec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


def raw_schema() -> str:
    """DDL of the parse schema: every field as text, plus the corrupt-record column."""
    return ", ".join([f"`{name}` STRING" for name in schema.FIELD_NAMES] + ["_corrupt STRING"])


def landing_lines(spark: SparkSession, spec: DataSpec, locs: Locations) -> DataFrame:
    from pyspark.sql import functions as F

    lines = (
        spark.readStream.format("text")
        .option("maxFilesPerTrigger", spec.max_files_per_trigger)
        .option("maxFileAge", f"{spec.late_data_horizon_s}s")
        .load(locs.landing_files)
    )
    parsed = F.from_json("value", raw_schema(), {"columnNameOfCorruptRecord": "_corrupt"})
    # input_file_name(), not _metadata.file_path: the same URI, and the metadata column cost
    # about 8 s per million lines in the partitioned write (measured, see bench/README).
    return lines.select(
        F.col("value").alias("line"),
        F.input_file_name().alias("source_file"),
        parsed.alias("r"),
    )


def passes_every_rule() -> Column:
    """True when a parsed line breaks no rule: one match of `schema.whole_line_pattern()`
    over the fields joined, instead of one per field (the common case pays one regex)."""
    from pyspark.sql import functions as F

    parts = []
    for rule in schema.FIELDS:
        value = F.col(f"r.`{rule.name}`")
        if not rule.required:
            value = F.when(value.isNull(), F.lit(schema.ABSENT)).otherwise(
                F.concat(F.lit(schema.PRESENT), value)
            )
        parts.append(value)
    joined = F.concat_ws(schema.SEPARATOR, *parts)
    return (
        F.col("r").isNotNull()
        & F.col("r._corrupt").isNull()
        & joined.rlike(schema.whole_line_pattern())
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
    return F.when(passes_every_rule(), F.lit(None).cast("string")).otherwise(reason)


def judged_lines(spark: SparkSession, spec: DataSpec, locs: Locations) -> DataFrame:
    """Every landing line once, judged: the typed fields (null on a quarantined line), the
    event date, the source file, the reason (null when good), the raw line (quarantined
    lines only), and the dedup key and time described in the module docstring."""
    from pyspark.sql import functions as F

    lines = landing_lines(spark, spec, locs).withColumn("reason", reason_column())
    good = F.col("reason").isNull()

    def typed(name: str, spark_type: str) -> Column:
        # Only good lines are cast: Spark's ANSI casts raise on the text a bad line may hold.
        return F.when(good, F.col(f"r.`{name}`").cast(spark_type))

    ingest_us = typed("ingest_time_us", "bigint")
    quarantine_key = F.concat(
        F.lit("\0"), F.col("source_file"), F.lit("\0"), F.sha2(F.col("line"), 256)
    )
    return lines.select(
        *(typed(r.name, r.spark_type).alias(r.name) for r in schema.FIELDS),
        F.to_date(F.timestamp_micros(typed("event_time_us", "bigint"))).alias("event_date"),
        "source_file",
        "reason",
        F.when(~good, F.substring("line", 1, schema.MAX_QUARANTINED_LINE)).alias("line"),
        F.when(good, F.col("r.event_id")).otherwise(quarantine_key).alias("_key"),
        F.timestamp_micros(ingest_us).alias("_ingest_ts"),
    )
