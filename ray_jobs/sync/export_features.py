"""export_features: private warehouse (+ profiles' non-PII attributes) -> public snapshot.

One row per pseudonymous user: impressions, clicks, conversions, a smoothed CTR, a recency
bucket and a segment (region:language:activity). What leaves the zone is held three ways:

1. the frame is built from allowlisted columns only, and `allowlist.check_columns` refuses
   anything else before a byte is written;
2. keys that look personal (e-mail, phone number) or are a private unified id are dropped;
   people who refused personalised ads and erased people are left out;
3. after Spark wrote the files, every file is read back with pyarrow: its columns are checked
   against the allowlist again and every string value is scanned (`scan.findings`). Any
   finding deletes the staging directory and fails the export: nothing is published.

Segments with fewer than k users are published as "other" (`features_logic.kept_segments`).
The snapshot is published atomically (`publish.finish`): versioned directory + CURRENT.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from ray_jobs.sync import allowlist, features_logic, publish, scan
from ray_jobs.sync.config import Locations
from ray_jobs.sync.private_source import PrivateInputs
from ray_jobs.sync.sync_events import empty_ids, erased_ids
from services.topology.model import DataSpec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

KEY = allowlist.KEY


class ExportRefused(Exception):
    """The written snapshot failed a check; it was deleted and not published."""


@dataclass(frozen=True)
class ExportReport:
    version: str
    row_count: int
    segments_kept: int
    segments_suppressed: int
    profiles_refusing_personalisation: int
    seconds: float


def read_events(spark: SparkSession, locs: Locations) -> DataFrame:
    """The warehouse event table, through Spark (it honours the sink's metadata log)."""
    return spark.read.parquet(locs.events.uri)


def purged(
    spark: SparkSession, events: DataFrame, locs: Locations, inputs: PrivateInputs
) -> DataFrame:
    """`events` without erased people (the DB's erasures and the exported erasure table)."""
    from pyspark.sql import functions as F

    rows = [(p,) for p in inputs.erased]
    from_db = spark.createDataFrame(rows, f"{KEY} STRING") if rows else empty_ids(spark)
    erased = from_db.unionByName(erased_ids(spark, locs)).distinct()
    return events.join(F.broadcast(erased), KEY, "left_anti")


def _when_chain(pairs: list[tuple[Column, str]], default: str) -> Column:
    from pyspark.sql import functions as F

    result: Column = F.lit(default)
    for condition, value in reversed(pairs):
        result = F.when(condition, F.lit(value)).otherwise(result)
    return result


def safe_key(inputs: PrivateInputs) -> Column:
    """The key may be published: not empty, not shaped like an e-mail or phone number, not a
    private unified id."""
    from pyspark.sql import functions as F

    key = F.col(KEY)
    safe = (F.length(key) > 0) & ~key.rlike(scan.EMAIL) & ~key.rlike(scan.PHONE)
    return safe & ~key.isin(list(inputs.unified_ids)) if inputs.unified_ids else safe


def per_user(events: DataFrame, inputs: PrivateInputs) -> DataFrame:
    """Counts and last event time per user; personal-looking or private keys dropped."""
    from pyspark.sql import functions as F

    def count_of(kind: str) -> Column:
        return F.sum(F.when(F.col("type") == kind, 1).otherwise(0)).cast("long").alias(kind + "s")

    return (
        events.where(safe_key(inputs))
        .groupBy(KEY)
        .agg(
            count_of("impression"),
            count_of("click"),
            count_of("conversion"),
            F.max("event_time_us").alias("last_event_us"),
        )
    )


def feature_columns(prior: Column, strength: float, as_of_us: Column) -> tuple[Column, ...]:
    """(ctr_smoothed, recency_bucket, activity tier) from the columns `impressions`, `clicks`
    and `last_event_us`, with the formulas of features_logic: the export computes them as of
    its run, the training set as of each impression (training_set.py), from this one place."""
    from pyspark.sql import functions as F

    ctr = (F.col("clicks") + prior * F.lit(strength)) / (F.col("impressions") + F.lit(strength))
    age_days = (as_of_us - F.col("last_event_us")) / F.lit(features_logic.DAY_US)
    recency = _when_chain(
        [(age_days < upper, name) for upper, name in features_logic.RECENCY_BUCKETS],
        features_logic.OLDEST_BUCKET,
    )
    tier = _when_chain(
        [(F.col("impressions") >= low, t) for low, t in features_logic.ACTIVITY_TIERS[:-1]],
        features_logic.ACTIVITY_TIERS[-1][1],
    )
    return ctr.cast("double"), recency, tier


def profile_attributes(spark: SparkSession, inputs: PrivateInputs) -> DataFrame:
    """Per pseudonymous id: the segment's region:language part and the consent."""
    rows = [
        (
            p.pseudonymous_user_id,
            features_logic.segment_name(p.region_code, p.language_code, ""),
            p.personalization_allowed,
        )
        for p in inputs.profiles
    ]
    return spark.createDataFrame(rows, f"{KEY} STRING, segment_base STRING, allowed BOOLEAN")


def with_features(
    users: DataFrame, spark: SparkSession, inputs: PrivateInputs, spec: DataSpec, as_of_us: int
) -> tuple[DataFrame, float]:
    """Smoothed CTR, recency bucket, unsuppressed segment; consent applied."""
    from pyspark.sql import functions as F

    totals = users.agg(F.sum("impressions").alias("i"), F.sum("clicks").alias("c")).first()
    prior = (
        features_logic.prior_ctr(int(totals["c"] or 0), int(totals["i"] or 0)) if totals else 0.0
    )
    ctr, recency, tier = feature_columns(F.lit(prior), spec.ctr_prior_strength, F.lit(as_of_us))
    unknown = features_logic.segment_name(None, None, "")
    joined = users.join(F.broadcast(profile_attributes(spark, inputs)), KEY, "left").where(
        F.coalesce(F.col("allowed"), F.lit(True))
    )
    frame = joined.select(
        KEY,
        "impressions",
        "clicks",
        "conversions",
        ctr.alias("ctr_smoothed"),
        recency.alias("recency_bucket"),
        F.concat(F.coalesce(F.col("segment_base"), F.lit(unknown)), tier).alias("segment_raw"),
    )
    return frame, prior


def suppress(frame: DataFrame, k: int) -> tuple[DataFrame, int, int]:
    """Replace segments smaller than k users by "other"; returns (frame, kept, suppressed)."""
    out, kept, suppressed = suppressed_segments(frame, k)
    return out.select(*allowlist.ALLOWED), kept, suppressed


def suppressed_segments(frame: DataFrame, k: int) -> tuple[DataFrame, int, int]:
    """`frame` with `segment`: its `segment_raw`, or "other" where fewer than k distinct users
    (KEY) have it."""
    from pyspark.sql import functions as F

    counted = frame.where(F.col("segment_raw").isNotNull()).groupBy("segment_raw")
    sizes = {
        r["segment_raw"]: int(r["users"])
        for r in counted.agg(F.countDistinct(KEY).alias("users")).collect()
    }
    kept = features_logic.kept_segments(sizes, k)
    raw = F.col("segment_raw")
    segment = F.when(raw.isNull(), F.lit(None).cast("string")).otherwise(
        F.when(raw.isin(sorted(kept)), raw).otherwise(F.lit(features_logic.SUPPRESSED))
    )
    return frame.withColumn("segment", segment), len(kept), len(set(sizes) - kept)


def verify_written(directory: Path, forbidden: frozenset[str]) -> None:
    """Read back every file Spark wrote; raise ExportRefused on any finding."""
    problems: list[str] = []
    for path in sorted(directory.glob("*.parquet")):
        table = pq.ParquetFile(path).read()
        try:
            allowlist.check_columns(((f.name, str(f.type)) for f in table.schema), arrow=True)
        except allowlist.NotAllowlisted as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        for column in table.column_names:
            if pa.types.is_string(table.schema.field(column).type):
                found = scan.findings(table.column(column).to_pylist(), forbidden)
                problems += [f"{path.name}.{column}: {f}" for f in found[:5]]
    if problems:
        raise ExportRefused("; ".join(problems[:10]))


def export(
    spark: SparkSession,
    spec: DataSpec,
    locs: Locations,
    inputs: PrivateInputs,
    as_of_us: int | None = None,
) -> ExportReport:
    """Build, check and publish one snapshot."""
    started = time.monotonic()
    as_of_us = time.time_ns() // 1000 if as_of_us is None else as_of_us
    events = purged(spark, read_events(spark, locs), locs, inputs)
    frame, prior = with_features(per_user(events, inputs), spark, inputs, spec, as_of_us)
    final, kept, suppressed = suppress(frame, spec.k_anonymity)
    allowlist.check_columns((f.name, f.dataType.typeName()) for f in final.schema)
    root = locs.features.path
    staging = publish.staging_dir(root)
    final.repartition(spec.shuffle_partitions, KEY).sortWithinPartitions(KEY).write.parquet(
        staging.as_uri()
    )
    try:
        verify_written(staging, inputs.unified_ids)
    except ExportRefused:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    refusing = sum(1 for p in inputs.profiles if not p.personalization_allowed)
    version = publish.new_version(time.time_ns() // 1000)
    extra = {
        "k": spec.k_anonymity,
        "as_of_us": as_of_us,
        "prior_ctr": prior,
        "ctr_prior_strength": spec.ctr_prior_strength,
        "segments_kept": kept,
        "segments_suppressed": suppressed,
        "key": KEY,
    }
    manifest = publish.finish(
        root, staging, version, allowlist.manifest_columns(), extra, spec.keep_snapshots
    )
    return ExportReport(
        version,
        int(manifest["row_count"]),
        kept,
        suppressed,
        refusing,
        round(time.monotonic() - started, 3),
    )
