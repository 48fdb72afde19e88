"""Pruning the landing log: a file goes only once every query has committed the batch that
read it; uncommitted batches, a query without a checkpoint and files outside the landing
directory keep their files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ray_jobs.sync.prune import prunable, prune_landing

pytestmark = pytest.mark.unit


def checkpoint(root: Path, batches: dict[str, list[Path]], committed: list[int]) -> Path:
    """A file-source checkpoint as Spark writes it: sources/0/<batch> and commits/<batch>."""
    (root / "sources" / "0").mkdir(parents=True)
    (root / "commits").mkdir()
    for name, files in batches.items():
        lines = ["v1"] + [
            json.dumps({"path": f.as_uri(), "timestamp": 1, "batchId": 0}) for f in files
        ]
        (root / "sources" / "0" / name).write_text("\n".join(lines) + "\n")
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
    events = checkpoint(tmp_path / "ev", {"0": f[:2], "1": f[2:3], "2": f[3:]}, [0, 1])
    quarantine = checkpoint(tmp_path / "q", {"9.compact": f[:3], "10": f[3:]}, [9])
    assert prunable([events, quarantine]) == set(f[:3])
    assert prune_landing(tmp_path / "landing", [events, quarantine]) == 3
    assert [p.exists() for p in f] == [False, False, False, True]


def test_a_query_without_a_checkpoint_keeps_everything(tmp_path: Path) -> None:
    f = landing_files(tmp_path, 2)
    events = checkpoint(tmp_path / "ev", {"0": f}, [0])
    assert prune_landing(tmp_path / "landing", [events, tmp_path / "missing"]) == 0
    assert all(p.exists() for p in f)


def test_files_outside_the_landing_directory_are_never_touched(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text("{}\n")
    events = checkpoint(tmp_path / "ev", {"0": [outside]}, [0])
    quarantine = checkpoint(tmp_path / "q", {"0": [outside]}, [0])
    (tmp_path / "landing").mkdir()
    assert prune_landing(tmp_path / "landing", [events, quarantine]) == 0
    assert outside.exists()
