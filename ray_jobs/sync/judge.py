"""How the sync reads and judges landing lines in Spark (column expressions; no I/O beyond
the streaming read).

Two ways to the same verdict:

- the fast way, for a line in the event writer's own form (`schema.canonical_line_pattern`,
  which only a line passing every rule matches): one `regexp_replace` both accepts it and
  turns it into its values joined by `schema.SEPARATOR`, and a split on that character
  reads them -- no JSON parse;
- the long way, for every other line: a parse with every field as text (so a malformed line
  gets a reason that names the field instead of silently becoming nulls), one regular
  expression over the fields joined (`schema.whole_line_pattern`), and, only for a line that
  fails it, the rules one by one (`reason_column`), exactly as `schema.first_problem`.

Both give the same fields' text (`tests/system/test_spark_sync.py` compares them line by
line on a corpus of both kinds); only the text of a JSON number can differ ("-0" read as
written, "0" through the parse), and the cast makes both 0.

Measured on 1M writer lines (C2 JIT warm, no-op sink, probe runs): the long way's parse and
judging took 5.5-6.1 s on two cores, the fast way about 3 s; the JSON parse (a Jackson parser
and, for every number read as text, a JSON generator per value) was a third of the sync's
task time.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """The landing files as a stream of lines: `value` (the line) and `source_file`."""
    from pyspark.sql import functions as F

    lines = (
        spark.readStream.format("text")
        .option("maxFilesPerTrigger", spec.max_files_per_trigger)
        .option("maxFileAge", f"{spec.late_data_horizon_s}s")
        .load(locs.landing_files)
    )
    # input_file_name(), not _metadata.file_path: the same URI, and the metadata column cost
    # about 8 s per million lines in the partitioned write (measured, see README, Data sync).
    return lines.select("value", F.input_file_name().alias("source_file"))


def parsed(lines: DataFrame, fast_way: bool = True) -> DataFrame:
    """`lines` (`value`, `source_file`) with each line's fields as text in a struct `r`
    (the `raw_schema()`), `line`, and `_fast` (read the fast way: already judged good)."""
    return _apply(lines, stages(fast_way)[:PARSED])


# The judge as a chain of projections (`select`s): their column lists.
Projections = tuple[tuple["Column", ...], ...]
# `parsed` is the first three projections; `judged` adds the reason, then the verdict.
PARSED = 3
_BUILT: dict[tuple[int, bool], Projections] = {}


def stages(fast_way: bool = True) -> Projections:
    """The judge's projections, built once per JVM and reused by every run.

    Building them takes some hundreds of py4j calls (every `F.col`, `F.when`, `rlike` is
    one): about 0.6 s of each run with a warm C2 JVM, 3 s in a fresh one -- paid again by
    every run of a continuous sync. A column is an expression tree that names columns and
    holds no data frame, so one built list serves every query in the JVM (the gateway
    lives as long as the Python process; a stopped session's JVM columns stay valid)."""
    from pyspark import SparkContext

    key = (id(SparkContext._gateway), fast_way)
    if key not in _BUILT:
        _BUILT[key] = _build(fast_way)
    return _BUILT[key]


def _apply(frame: DataFrame, projections: Sequence[Sequence[Column]]) -> DataFrame:
    for columns in projections:
        frame = frame.select(*columns)
    return frame


def _build(fast_way: bool) -> Projections:
    """The projections (see `stages`). Separate projections on purpose: a column used many
    times and not cheap (the values array, the parse) is computed once per row, where one
    projection would repeat it."""
    from pyspark.sql import functions as F

    # One match: a canonical line becomes its values joined by SEPARATOR (no value can hold
    # it), which starts with the event id, never with "{"; any other line comes back as it
    # was, or, when its bytes are not valid UTF-8, decoded with U+FFFD in their place -- so
    # "it changed" would take such a line for a canonical one. Only a line that starts with
    # "{" and whose result does not is fast. Splitting on one plain character needs no regex.
    pattern, join = schema.canonical_line_pattern(), schema.canonical_join()
    first = (
        F.col("value").alias("line"),
        F.col("source_file"),
        F.regexp_replace("value", pattern, join).alias("_joined")
        if fast_way
        else F.col("value").alias("_joined"),
    )
    fast = F.col("line").startswith("{") & ~F.col("_joined").startswith("{")
    second = (
        F.col("line"),
        F.col("source_file"),
        fast.alias("_fast"),
        F.when(fast, F.split("_joined", schema.SEPARATOR)).alias("_values"),
    )
    position = {rule.name: i for i, rule in enumerate(schema.canonical_order(), start=1)}

    def value(rule: schema.FieldRule) -> Column:
        text = F.try_element_at("_values", F.lit(position[rule.name]))
        return (text if rule.required else F.nullif(text, F.lit(""))).alias(rule.name)

    from_values = F.struct(
        *(value(rule) for rule in schema.FIELDS), F.lit(None).cast("string").alias("_corrupt")
    )
    parse = F.from_json("line", raw_schema(), {"columnNameOfCorruptRecord": "_corrupt"})
    kept = (F.col("line"), F.col("source_file"), F.col("_fast"))
    third = (*kept, F.when(F.col("_fast"), from_values).otherwise(parse).alias("r"))
    fourth = (*kept, F.col("r"), reason_column().alias("reason"))
    return (first, second, third, fourth, verdict())


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
    none = F.lit(None).cast("string")
    return F.when(F.col("_fast") | passes_every_rule(), none).otherwise(reason)


def judged_lines(spark: SparkSession, spec: DataSpec, locs: Locations) -> DataFrame:
    """Every landing line once, judged (`judged`)."""
    return judged(landing_lines(spark, spec, locs))


def judged(lines: DataFrame, fast_way: bool = True) -> DataFrame:
    """`lines` (`value`, `source_file`) judged: the typed fields (null on a quarantined
    line), the event date, the source file, the reason (null when good), the raw line
    (quarantined lines only), and the dedup key and time (see `sync_events`)."""
    return _apply(lines, stages(fast_way))


def verdict() -> tuple[Column, ...]:
    """The last projection of `judged`, over the parsed lines and their `reason`."""
    from pyspark.sql import functions as F

    good = F.col("reason").isNull()

    def typed(name: str, spark_type: str) -> Column:
        # Only good lines are cast: Spark's ANSI casts raise on the text a bad line may hold.
        return F.when(good, F.col(f"r.`{name}`").cast(spark_type))

    ingest_us = typed("ingest_time_us", "bigint")
    quarantine_key = F.concat(
        F.lit("\0"), F.col("source_file"), F.lit("\0"), F.sha2(F.col("line"), 256)
    )
    return (
        *(typed(r.name, r.spark_type).alias(r.name) for r in schema.FIELDS),
        F.to_date(F.timestamp_micros(typed("event_time_us", "bigint"))).alias("event_date"),
        F.col("source_file"),
        F.col("reason"),
        F.when(~good, F.substring("line", 1, schema.MAX_QUARANTINED_LINE)).alias("line"),
        F.when(good, F.col("r.event_id")).otherwise(quarantine_key).alias("_key"),
        F.timestamp_micros(ingest_us).alias("_ingest_ts"),
    )
