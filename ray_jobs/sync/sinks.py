"""Spark's own file sink, driven from `foreachBatch`.

The sync writes two tables (events, quarantine) from one query: its `foreachBatch` hands each
micro-batch to one `FileStreamSink` per table -- the class behind `writeStream.format(
"parquet")`, so each table keeps the commit protocol every reader relies on: a batch's part
files become visible only when `_spark_metadata/<batch>` names them, a batch id the log
already has is skipped (a re-run batch after a crash writes nothing twice), and the log is
compacted every `spark.sql.streaming.fileSink.log.compactInterval` batches.

`FileStreamSink` is internal to Spark (pinned in pyproject.toml: pyspark >=4.3,<4.4); its
constructor is the one the `parquet` streaming data source calls. Every sync test goes
through it, so a Spark upgrade that moves it fails loudly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray_jobs.sync.sinklog import METADATA

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

PACKAGE = "org.apache.spark.sql.execution.streaming.sinks"
SINK_CLASS = f"{PACKAGE}.FileStreamSink"


class ParquetSink:
    """One table written batch by batch through Spark's file sink."""

    def __init__(
        self,
        spark: SparkSession,
        uri: str,
        partition_by: list[str],
        options: dict[str, str] | None = None,
    ) -> None:
        jvm: Any = spark._jvm  # py4j: how PySpark reaches the JVM
        utils = jvm.org.apache.spark.api.python.PythonUtils
        parquet = jvm.org.apache.spark.sql.execution.datasources.parquet.ParquetFileFormat()
        self._sink = _java_class(jvm, SINK_CLASS)(
            spark._jsparkSession,
            uri,
            parquet,
            utils.toSeq(partition_by),
            utils.toScalaMap(options or {}),
        )
        self._jvm = jvm
        self._gateway: Any = spark.sparkContext._gateway
        self._session = spark._jsparkSession
        self.uri = uri

    def add_batch(self, batch_id: int, frame: DataFrame) -> None:
        """Write and commit `frame` as batch `batch_id`; nothing when the log has it already."""
        self._sink.addBatch(batch_id, frame._jdf)

    def add_empty_batch(self, batch_id: int) -> None:
        """Commit batch `batch_id` with no files. (An empty frame through `add_batch` would
        write one empty part file per batch: a continuous sync would grow the table by a file
        per batch for nothing.) The log must hold every batch id: Spark's readers and its
        compaction read the ids from the last compaction on, and a gap is an error."""
        status_class = _java_class(self._jvm, f"{PACKAGE}.SinkFileStatus")
        if not self._log().add(batch_id, self._gateway.new_array(status_class, 0)):
            raise RuntimeError(f"{self.uri}: the log already has batch {batch_id}")

    def latest_batch(self) -> int:
        """The table's last committed batch id (-1 before any)."""
        latest = self._log().getLatestBatchId()
        return int(latest.get()) if latest.isDefined() else -1

    def committed(self, batch_id: int) -> bool:
        """Whether the table has batch `batch_id`: the file sink skips every id up to its
        latest, so that is the test (a compacted log no longer has each id's own file)."""
        return self.latest_batch() >= batch_id

    def _log(self) -> Any:
        log_class = _java_class(self._jvm, f"{PACKAGE}.FileStreamSinkLog")
        return log_class(
            log_class.VERSION(),
            self._session,
            f"{self.uri.rstrip('/')}/{METADATA}",
            self._jvm.scala.Option.empty(),
        )


def _java_class(jvm: Any, name: str) -> Any:
    found = jvm
    for part in name.split("."):
        found = getattr(found, part)
    return found
