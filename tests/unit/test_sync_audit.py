"""`isthmus sync audit` on sinks written the way Spark's file sink writes them: it counts
copies through the sink's log (a file the log does not name is debris, not a copy), a part
file the log names twice is a duplicate, and a pending completeness record fails the audit."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_jobs.sync.audit import audit, extra_copies
from ray_jobs.sync.completeness import RECORDS
from ray_jobs.sync.config import Locations
from services.topology.model import DataSpec

pytestmark = pytest.mark.unit


def locations(tmp_path: Path) -> Locations:
    return Locations.from_spec(
        DataSpec(
            landing_uri=str(tmp_path / "landing"),
            warehouse_uri=str(tmp_path / "warehouse"),
            quarantine_uri=str(tmp_path / "quarantine"),
            checkpoint_uri=str(tmp_path / "checkpoints"),
            features_uri=str(tmp_path / "features"),
        )
    )


def part(sink: Path, name: str, ids: list[str]) -> Path:
    path = sink / "date=2026-11-30" / f"part-{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"event_id": ids}), path)
    return path


def commit(sink: Path, batch: int, parts: list[Path]) -> None:
    log = sink / "_spark_metadata"
    log.mkdir(parents=True, exist_ok=True)
    entries = [
        json.dumps(
            {
                "path": p.as_uri(),
                "size": p.stat().st_size,
                "isDir": False,
                "modificationTime": 1,
                "blockReplication": 1,
                "blockSize": 1,
                "action": "add",
            }
        )
        for p in parts
    ]
    (log / str(batch)).write_text("\n".join(["v1", *entries]) + "\n")


def test_extra_copies_counts_copies_beyond_the_first() -> None:
    assert extra_copies(["a", "b", "a", "a", "c", "b"]) == (3, 2)
    assert extra_copies([]) == (0, 0)


def test_a_clean_sink_with_debris_is_exactly_once(tmp_path: Path) -> None:
    locs = locations(tmp_path)
    sink = locs.events.path
    commit(sink, 0, [part(sink, "0", ["e1", "e2"])])
    commit(sink, 1, [part(sink, "1", ["e3"])])
    part(sink, "killed", ["e3", "e4"])  # a killed batch's file: no log entry names it
    result = audit(locs)
    assert (result.events, result.extra_copies, result.debris_files) == (3, 0, 1)
    assert result.exactly_once


def test_a_replayed_batch_committed_twice_is_caught(tmp_path: Path) -> None:
    locs = locations(tmp_path)
    sink = locs.events.path
    first = part(sink, "0", ["e1", "e2"])
    commit(sink, 0, [first])
    commit(sink, 1, [part(sink, "0-replayed", ["e2", "e1"])])
    result = audit(locs)
    assert (result.events, result.extra_copies, result.duplicated_ids) == (4, 2, 2)
    assert not result.exactly_once


def test_a_pending_completeness_record_fails_the_audit(tmp_path: Path) -> None:
    locs = locations(tmp_path)
    sink = locs.events.path
    commit(sink, 0, [part(sink, "0", ["e1"])])
    records = locs.sync_checkpoint.path / RECORDS
    records.mkdir(parents=True)
    (records / "4.json").write_text(json.dumps(["/landing/lost.jsonl"]))
    result = audit(locs)
    assert result.unread_records == 1
    assert result.extra_copies == 0
    assert not result.exactly_once


def test_an_empty_warehouse_is_exactly_once(tmp_path: Path) -> None:
    result = audit(locations(tmp_path))
    assert (result.events, result.debris_files, result.exactly_once) == (0, 0, True)
