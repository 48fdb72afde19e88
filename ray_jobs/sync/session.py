"""The SparkSession every data job uses, built from the topology's `data:` section."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlparse

from services.topology.model import DataSpec

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# RocksDB keeps the dedup state off the JVM heap and checkpoints it incrementally; the
# default (HDFS-backed) provider holds every key in driver memory.
ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


def spark_conf(spec: DataSpec) -> dict[str, str]:
    """Settings for the session (pure, so a test can read them)."""
    conf = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(spec.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": spec.driver_memory,
        "spark.sql.streaming.stateStore.providerClass": ROCKSDB_PROVIDER,
        # Otherwise every put into the dedup state first reads the key back, only to keep a
        # count of the rows in the store for the query's progress (nothing here reads it):
        # a 1M-event run, median of 3 warm runs, 20.9 s -> 19.2 s (README, Data sync).
        "spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows": "false",
        # A schema change of the sink must be a decision, not an accident.
        "spark.sql.streaming.schemaInference": "false",
        "spark.sql.parquet.compression.codec": "snappy",
        # No batch without new files: it would only move the dedup watermark and evict
        # expired ids, which the next batch with data does as well (1-1.5 s per run on 1M
        # events, and an empty quarantine file each time).
        "spark.sql.streaming.noDataMicroBatches.enabled": "false",
        # The landing glob expands to one path per file; past this threshold Spark lists
        # them with a distributed job of one task per path (13k tasks, >150 s for 13k landing
        # files on two cores, measured in the sync-killed drill), where listing them on the
        # driver takes about a second.
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "1000000",
    }
    if spec.driver_java_options:  # read as the driver's JVM starts (PySpark's spark-submit)
        conf["spark.driver.extraJavaOptions"] = spec.driver_java_options
    if on_loopback(spec.spark_master):
        # Local runs, and a standalone master on this machine's loopback, stay on loopback:
        # nothing else on the network reaches the driver (its executors connect back to it).
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    return conf


def on_loopback(master: str) -> bool:
    """Whether the Spark master is this process (`local[N]`) or listens on loopback."""
    if master.startswith("local"):
        return True
    return urlparse(master).hostname in ("127.0.0.1", "localhost", "::1")


def build_session(spec: DataSpec, app_name: str) -> SparkSession:
    """Start (or join) the session; ~6 s on a 2-core machine for a local master."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(spec.spark_master).appName(app_name)
    for key, value in spark_conf(spec).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
