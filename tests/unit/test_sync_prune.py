"""Pruning the landing log: a file goes only once every query has committed the batch that
read it; uncommitted batches, a query without a checkpoint and files outside the landing
directory keep their files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ray_jobs.sync.prune import planned_in, prunable, prune_landing

pytestmark = pytest.mark.unit


def checkpoint(
    root: Path,
    logs: dict[str, dict[int, list[Path]]],
    committed: list[int],
    offsets: dict[int, int] | None = None,
) -> Path:
    """A file-source checkpoint as Spark writes it: sources/0/<log file> with entries by
    source log id, offsets/<batch> ending with the source's log offset (by default batch n
    read up to log id n), commits/<batch>."""
    (root / "sources" / "0").mkdir(parents=True)
    (root / "offsets").mkdir()
    (root / "commits").mkdir()
    for name, by_id in logs.items():
        lines = ["v1"] + [
            json.dumps({"path": f.as_uri(), "timestamp": 1, "batchId": log_id})
            for log_id, files in by_id.items()
            for f in files
        ]
        (root / "sources" / "0" / name).write_text("\n".join(lines) + "\n")
    if offsets is None:
        offsets = {i: i for by_id in logs.values() for i in by_id}
    for batch, log_offset in offsets.items():
        meta = json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 1, "conf": {}})
        text = f"v1\n{meta}\n{json.dumps({'logOffset': log_offset})}"
        (root / "offsets" / str(batch)).write_text(text)
    for batch in committed:
        (root / "commits" / str(batch)).write_text("v1\n{}\n")
    return root


def landing_files(tmp_path: Path, n: int) -> list[Path]:
    files = []
    for i in range(n):
        path = tmp_path / "landing" / "date=2026-11-29" / "hour=20" / f"f{i}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
        files.append(path)
    return files


def test_only_files_every_query_committed_are_pruned(tmp_path: Path) -> None:
    f = landing_files(tmp_path, 4)
    events = checkpoint(
        tmp_path / "ev", {"0": {0: f[:2]}, "1": {1: f[2:3]}, "2": {2: f[3:]}}, [0, 1]
    )
    quarantine = checkpoint(
        tmp_path / "q", {"9.compact": {8: f[:2], 9: f[2:3]}, "10": {10: f[3:]}}, [9]
    )
    assert prunable([events, quarantine]) == set(f[:3])
    assert prune_landing(tmp_path / "landing", [events, quarantine]) == 3
    assert [p.exists() for p in f] == [False, False, False, True]


def test_a_query_without_a_checkpoint_keeps_everything(tmp_path: Path) -> None:
    f = landing_files(tmp_path, 2)
    events = checkpoint(tmp_path / "ev", {"0": {0: f}}, [0])
    assert prune_landing(tmp_path / "landing", [events, tmp_path / "missing"]) == 0
    assert all(p.exists() for p in f)


def test_files_outside_the_landing_directory_are_never_touched(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text("{}\n")
    events = checkpoint(tmp_path / "ev", {"0": {0: [outside]}}, [0])
    quarantine = checkpoint(tmp_path / "q", {"0": {0: [outside]}}, [0])
    (tmp_path / "landing").mkdir()
    assert prune_landing(tmp_path / "landing", [events, quarantine]) == 0
    assert outside.exists()


def test_batch_ids_are_not_source_log_ids(tmp_path: Path) -> None:
    """A stateful query runs batches without new files (its watermark moves), so its batch
    ids run ahead of the source's log ids: batch 2 read log ids 0-1, batch 3 none, batch 4
    planned log id 2 and is not committed. Log id 2's files must stay although a batch
    numbered 2 has committed."""
    f = landing_files(tmp_path, 3)
    events = checkpoint(
        tmp_path / "ev",
        {"0": {0: f[:1]}, "1": {1: f[1:2]}, "2": {2: f[2:]}},
        [0, 1, 2, 3],
        offsets={0: 0, 1: 0, 2: 1, 3: 1, 4: 2},
    )
    assert prunable([events]) == set(f[:2])
    assert planned_in(events, 4) == {f[2]}
    assert planned_in(events, 3) == set()  # a batch without new files
    assert planned_in(events, 2) == {f[1]}
