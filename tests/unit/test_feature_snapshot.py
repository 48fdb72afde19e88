"""The feature snapshot contract without Spark: publish (versioned directory + manifest +
atomic CURRENT), the pyarrow reader the ranking service uses, rollback and retention."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_jobs.sync import allowlist, publish
from services.public.features.snapshot import (
    SnapshotError,
    current_version,
    load_current,
    load_version,
)

US = 1_767_225_600_000_000


def rows(users: list[str], clicks: int = 1) -> pa.Table:
    n = len(users)
    return pa.table(
        {
            "pseudonymous_user_id": pa.array(users, pa.string()),
            "impressions": pa.array([10] * n, pa.int64()),
            "clicks": pa.array([clicks] * n, pa.int64()),
            "conversions": pa.array([0] * n, pa.int64()),
            "ctr_smoothed": pa.array([0.02] * n, pa.float64()),
            "recency_bucket": pa.array(["0-1d"] * n, pa.string()),
            "segment": pa.array(["DE:de:regular"] * n, pa.string()),
        }
    )


def publish_table(root: Path, parts: list[pa.Table], at_us: int, keep: int = 3) -> str:
    """Stand-in for Spark: part files in a staging dir, then the real publish step."""
    staging = publish.staging_dir(root)
    staging.mkdir()
    for i, part in enumerate(parts):
        pq.write_table(part, staging / f"part-{i:05d}-x.snappy.parquet")
    (staging / "_SUCCESS").write_bytes(b"")
    version = publish.new_version(at_us)
    publish.finish(root, staging, version, allowlist.manifest_columns(), {"k": 20}, keep)
    return version


def test_nothing_published_yet(tmp_path: Path) -> None:
    assert load_current(tmp_path) is None


def test_publish_then_lookup_follows_current(tmp_path: Path) -> None:
    version = publish_table(tmp_path, [rows(["p_a", "p_b"]), rows(["p_c"], clicks=3)], US)
    snap = load_current(tmp_path)
    assert snap is not None
    assert snap.version == version
    assert len(snap) == 3
    assert snap.lookup("p_c") == {
        "pseudonymous_user_id": "p_c",
        "impressions": 10,
        "clicks": 3,
        "conversions": 0,
        "ctr_smoothed": 0.02,
        "recency_bucket": "0-1d",
        "segment": "DE:de:regular",
    }
    assert snap.lookup("p_unknown") is None
    manifest = json.loads((tmp_path / "snapshots" / version / "manifest.json").read_text())
    assert manifest["row_count"] == 3
    assert manifest["k"] == 20
    assert sorted(p.name for p in (tmp_path / "snapshots" / version).iterdir()) == sorted(
        [*manifest["files"], "manifest.json"]
    )


def test_a_listed_file_missing_is_refused(tmp_path: Path) -> None:
    version = publish_table(tmp_path, [rows(["p_a"]), rows(["p_b"])], US)
    manifest = json.loads((tmp_path / "snapshots" / version / "manifest.json").read_text())
    (tmp_path / "snapshots" / version / manifest["files"][1]).unlink()
    with pytest.raises(SnapshotError, match="is missing"):
        load_current(tmp_path)


def test_an_altered_file_or_an_undeclared_column_is_refused(tmp_path: Path) -> None:
    version = publish_table(tmp_path, [rows(["p_a"])], US)
    directory = tmp_path / "snapshots" / version
    name = json.loads((directory / "manifest.json").read_text())["files"][0]
    pq.write_table(rows(["p_a", "p_z"]), directory / name)
    with pytest.raises(SnapshotError, match="checksum"):
        load_current(tmp_path)
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["sha256"]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    pq.write_table(rows(["p_a"]).append_column("email", pa.array(["x"])), directory / name)
    with pytest.raises(SnapshotError, match="has columns"):
        load_current(tmp_path)


def test_current_pointing_at_garbage_is_refused(tmp_path: Path) -> None:
    (tmp_path / "CURRENT").write_text("../../etc\n")
    with pytest.raises(SnapshotError, match="not a snapshot version"):
        current_version(tmp_path)


def test_rollback_and_retention_keep_the_previous_version(tmp_path: Path) -> None:
    made = [publish_table(tmp_path, [rows([f"p_{i}"])], US + i, keep=2) for i in range(4)]
    assert publish.versions(tmp_path) == made[-2:]
    assert publish.rollback(tmp_path) == made[-2]
    snap = load_current(tmp_path)
    assert snap is not None
    assert snap.lookup("p_2") is not None
    assert load_version(tmp_path, made[-1]).lookup("p_3") is not None
    with pytest.raises(FileNotFoundError, match="no version older"):
        publish.rollback(tmp_path)


def test_an_abandoned_staging_directory_is_pruned(tmp_path: Path) -> None:
    publish_table(tmp_path, [rows(["p_a"])], US)
    stale = publish.staging_dir(tmp_path)
    stale.mkdir()
    assert publish.prune(tmp_path, keep=3) == []
    assert publish.prune(tmp_path, keep=3, now_s=stale.stat().st_mtime + 7200) == [stale.name]
