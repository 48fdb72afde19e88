"""The demo's leak scan over public-zone files: what it reads, and what it must not misread."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from services.local.report import leak_scan


def world(tmp_path: Path) -> tuple[Path, Path]:
    run_dir, landing = tmp_path / "run", tmp_path / "landing"
    run_dir.mkdir()
    landing.mkdir()
    features = tmp_path / "features"
    (run_dir / "topology.yaml").write_text(
        yaml.safe_dump(
            {"data": {"landing_uri": str(landing), "features_uri": str(features)}, "zones": []}
        )
    )
    return run_dir, landing


def test_values_inside_sqlite_files_are_scanned_but_not_their_raw_pages(tmp_path: Path) -> None:
    run_dir, landing = world(tmp_path)
    db = sqlite3.connect(landing / "_index.db")
    db.execute("CREATE TABLE seen (event_id TEXT)")
    db.execute("INSERT INTO seen VALUES ('e1'), ('leaked@example.com')")
    db.commit()
    db.close()
    (landing / "_index.db-wal").write_bytes(b"\x00\x01+49 30 1234 5678\x00")  # phone-shaped bytes
    report = leak_scan(run_dir, [])
    assert report["files_scanned"] == 2
    assert report["problem_count"] == 1
    assert "_index.db:" in report["problems"][0]


def test_pretty_json_numbers_are_not_phone_numbers_but_shopper_ids_are_found(
    tmp_path: Path,
) -> None:
    run_dir, landing = world(tmp_path)
    (landing / "manifest.json").write_text(json.dumps({"as_of_us": 1795317483795583}, indent=2))
    (landing / "events.jsonl").write_text(json.dumps({"user": "p_abc", "note": "u-123"}) + "\n")
    shopper = type("Shopper", (), {"email": "a@b.io", "phone": "+4930100", "unified_id": "u-123"})
    report = leak_scan(run_dir, [shopper()])
    assert report["problem_count"] == 1
    assert "events.jsonl" in report["problems"][0]


def test_a_file_renamed_during_the_scan_is_found_where_it_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event service renames a batch from `_incoming/` into its partition while a drill's
    leak scan runs: the scan must read it at its new path, not fail or skip it."""
    import services.local.report as report_module

    run_dir, landing = world(tmp_path)
    staged = landing / "_incoming" / "batch.jsonl"
    placed = landing / "date=2026-11-30" / "hour=21" / "batch.jsonl"
    placed.parent.mkdir(parents=True)
    placed.write_text(json.dumps({"note": "alice@example.com"}) + "\n")
    listings = iter([[staged, placed], [placed]])  # the first listing still saw it staged
    monkeypatch.setattr(report_module, "public_files", lambda _run_dir: next(listings))
    report = leak_scan(run_dir, [])
    assert report["files_scanned"] == 1
    assert report["problem_count"] == 1
    assert "batch.jsonl" in report["problems"][0]
