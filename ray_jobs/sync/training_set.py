"""build_training_set: warehouse impressions, labelled by whether the same ranked ad was
clicked, joined with the current feature snapshot, for the training job.

Output: `<warehouse>/training/<version>/` (parquet, written to a hidden staging directory and
renamed into place). Private zone only: it is keyed by pseudonymous id and holds raw events.

Known weakness: the snapshot's features were computed over the same events, clicks
included, so a model trained on this leaks the label through `user_clicks` and
`user_ctr_smoothed`. A point-in-time join (features as of each impression) is the fix.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ray_jobs.sync import publish
from ray_jobs.sync.config import Locations
from ray_jobs.sync.export_features import KEY, purged, read_events
from ray_jobs.sync.private_source import PrivateInputs
from services.core.durable import fsync_dir
from services.public.features.snapshot import MANIFEST, SNAPSHOTS, current_version

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

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
FEATURE_COLUMNS = ("impressions", "clicks", "ctr_smoothed", "recency_bucket", "segment")


@dataclass(frozen=True)
class TrainingReport:
    version: str
    rows: int
    positives: int
    feature_version: str | None


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


def with_features(
    spark: SparkSession, rows: DataFrame, locs: Locations
) -> tuple[DataFrame, str | None]:
    """Left-join the current snapshot's features (prefixed user_); nulls when none."""

    from pyspark.sql import functions as F

    root = locs.features.path
    version = current_version(root)
    schema = ", ".join(
        f"{c} {t}"
        for c, t in zip(
            (KEY, *FEATURE_COLUMNS),
            ("STRING", "BIGINT", "BIGINT", "DOUBLE", "STRING", "STRING"),
            strict=True,
        )
    )
    if version is None:
        features = spark.createDataFrame([], schema)
    else:
        directory = root / SNAPSHOTS / version
        manifest = json.loads((directory / MANIFEST).read_text())
        paths = [(directory / f).as_uri() for f in manifest["files"]]
        features = spark.read.parquet(*paths) if paths else spark.createDataFrame([], schema)
    renamed = features.select(KEY, *(F.col(c).alias(f"user_{c}") for c in FEATURE_COLUMNS))
    return rows.join(renamed, KEY, "left"), version


def build(spark: SparkSession, locs: Locations, inputs: PrivateInputs) -> TrainingReport:
    from pyspark.sql import functions as F

    rows = labelled(purged(spark, read_events(spark, locs), locs, inputs))
    table, feature_version = with_features(spark, rows, locs)
    root = locs.training.path
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{uuid.uuid4().hex}"
    table.write.parquet(staging.as_uri())
    written = spark.read.parquet(staging.as_uri())
    counts = written.agg(F.count("*").alias("n"), F.sum("clicked").alias("p")).first()
    version = publish.new_version(time.time_ns() // 1000)
    os.rename(staging, root / version)
    fsync_dir(root)
    rows_n = int(counts["n"]) if counts else 0
    positives = int(counts["p"] or 0) if counts else 0
    return TrainingReport(version, rows_n, positives, feature_version)
