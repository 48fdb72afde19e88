"""build_training_set: warehouse impressions, labelled by whether the same ranked ad was
clicked, with the user's features as they were just before each impression.

Point in time: an impression's features come only from events strictly earlier than it (a
window per user over event time, ending 1 µs before): counts, smoothed CTR, recency, the
segment's activity tier. The global CTR prior is the one of the days before the impression's
day. The formulas are the export's (`export_features.feature_columns`), so a row looks like
what the ranking service would have read from a snapshot taken at that moment; a user with no
earlier event, a refusal of personalised ads or a key the export would not publish has null
features, as serving sees someone missing from the snapshot. Joining the current snapshot
instead (as this job once did) leaks labels: the snapshot counts the very clicks being
predicted (tests/system/test_spark_sync.py plants one and shows both).

Output: `<warehouse>/training/<version>/` (parquet, written to a hidden staging directory and
renamed into place). Private zone only: it is keyed by pseudonymous id and holds raw events.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ray_jobs.sync import export_features, features_logic, publish
from ray_jobs.sync.config import Locations
from ray_jobs.sync.export_features import KEY, purged, read_events
from ray_jobs.sync.private_source import PrivateInputs
from services.core.durable import fsync_dir
from services.topology.model import DataSpec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

EVENT_COLUMNS = (
    "event_id",
    "event_time_us",
    KEY,
    "ad_id",
    "campaign_id",
    "placement_id",
    "position",
    "device_type",
    "channel",
    "model_version",
)


@dataclass(frozen=True)
class TrainingReport:
    version: str
    rows: int
    positives: int
    rows_with_features: int


def labelled(events: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    clicks = (
        events.where(F.col("type") == "click")
        .select("rank_request_id", "ad_id")
        .distinct()
        .withColumn("clicked", F.lit(1))
    )
    impressions = events.where(F.col("type") == "impression")
    joined = impressions.join(clicks, ["rank_request_id", "ad_id"], "left")
    return joined.select(*EVENT_COLUMNS, F.coalesce("clicked", F.lit(0)).alias("clicked"))


def point_in_time(
    spark: SparkSession, events: DataFrame, rows: DataFrame, inputs: PrivateInputs, spec: DataSpec
) -> DataFrame:
    """`rows` (impressions, by event_id) with `user_<feature>` columns computed from `events`
    strictly before each one."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    before = (
        Window.partitionBy(KEY).orderBy("event_time_us").rangeBetween(Window.unboundedPreceding, -1)
    )

    def before_count(kind: str) -> Column:
        hit = F.when(F.col("type") == kind, 1).otherwise(0)
        return F.coalesce(F.sum(hit).over(before), F.lit(0)).cast("long")

    history = events.select(
        "event_id",
        before_count("impression").alias("impressions"),
        before_count("click").alias("clicks"),
        F.max("event_time_us").over(before).alias("last_event_us"),
    )
    day = F.floor(F.col("event_time_us") / F.lit(features_logic.DAY_US))
    daily = events.groupBy(day.alias("day")).agg(
        F.sum(F.when(F.col("type") == "impression", 1).otherwise(0)).alias("i"),
        F.sum(F.when(F.col("type") == "click", 1).otherwise(0)).alias("c"),
    )
    earlier_days = Window.orderBy("day").rowsBetween(Window.unboundedPreceding, -1)  # days: few
    i_before = F.coalesce(F.sum("i").over(earlier_days), F.lit(0))
    c_before = F.coalesce(F.sum("c").over(earlier_days), F.lit(0))
    priors = daily.select(
        "day", F.when(i_before > 0, c_before / i_before).otherwise(F.lit(0.0)).alias("prior")
    )
    joined = (
        rows.join(history, "event_id", "left")
        .withColumn("day", day)
        .join(F.broadcast(priors), "day", "left")
        .join(F.broadcast(export_features.profile_attributes(spark, inputs)), KEY, "left")
    )
    ctr, recency, tier = export_features.feature_columns(
        F.col("prior"), spec.ctr_prior_strength, F.col("event_time_us")
    )
    known = (
        F.col("last_event_us").isNotNull()
        & export_features.safe_key(inputs)
        & F.coalesce(F.col("allowed"), F.lit(True))
    )
    unknown = features_logic.segment_name(None, None, "")
    segment_raw = F.concat(F.coalesce(F.col("segment_base"), F.lit(unknown)), tier)
    framed = joined.select(
        *rows.columns,
        F.when(known, F.col("impressions")).alias("user_impressions"),
        F.when(known, F.col("clicks")).alias("user_clicks"),
        F.when(known, ctr).alias("user_ctr_smoothed"),
        F.when(known, recency).alias("user_recency_bucket"),
        F.when(known, segment_raw).alias("segment_raw"),
    )
    with_segment, _, _ = export_features.suppressed_segments(framed, spec.k_anonymity)
    return with_segment.withColumnRenamed("segment", "user_segment").drop("segment_raw")


def build(
    spark: SparkSession, spec: DataSpec, locs: Locations, inputs: PrivateInputs
) -> TrainingReport:
    from pyspark.sql import functions as F

    events = purged(spark, read_events(spark, locs), locs, inputs)
    table = point_in_time(spark, events, labelled(events), inputs, spec)
    root = locs.training.path
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{uuid.uuid4().hex}"
    table.write.parquet(staging.as_uri())
    written = spark.read.parquet(staging.as_uri())
    counts = written.agg(
        F.count("*").alias("n"),
        F.sum("clicked").alias("p"),
        F.count("user_impressions").alias("f"),
    ).first()
    version = publish.new_version(time.time_ns() // 1000)
    os.rename(staging, root / version)
    fsync_dir(root)
    rows_n = int(counts["n"]) if counts else 0
    positives = int(counts["p"] or 0) if counts else 0
    featured = int(counts["f"] or 0) if counts else 0
    return TrainingReport(version, rows_n, positives, featured)
