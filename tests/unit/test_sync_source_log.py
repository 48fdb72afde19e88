"""Trimming the file source's log: only entries Spark would ignore anyway (older than the
newest minus the horizon), of committed ids, whose files are gone from the landing
directory; the rest byte for byte, in Spark's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ray_jobs.sync import source_log
from ray_jobs.sync.source_log import Entry, kept, parse, render
from services.public.events.landing import INCOMING
from tests.unit.test_sync_prune import checkpoint, landing_files

pytestmark = pytest.mark.unit

HOUR_MS = 3_600_000


def entry(name: str, hours: int, log_id: int) -> Entry:
    line = json.dumps(
        {"path": f"file:///landing/{name}", "timestamp": hours * HOUR_MS, "batchId": log_id}
    )
    return Entry(f"file:///landing/{name}", hours * HOUR_MS, log_id, line)


def test_only_old_committed_entries_of_gone_files_are_let_go() -> None:
    entries = [
        entry("old-gone", 0, 0),
        entry("old-present", 0, 0),
        entry("old-uncommitted", 1, 5),
        entry("at-the-floor", 2, 1),  # newest - horizon exactly: Spark keeps it too
        entry("recent", 9, 3),
        entry("newest", 12, 4),
    ]
    present = {"file:///landing/old-present"}
    asked: list[str] = []

    def is_present(uri: str) -> bool:
        asked.append(uri)
        return uri in present

    left = kept(entries, horizon_ms=10 * HOUR_MS, committed_upto=4, present=is_present)
    assert [e.path.rsplit("/", 1)[1] for e in left] == [
        "old-present",
        "old-uncommitted",
        "at-the-floor",
        "recent",
        "newest",
    ]
    # the landing directory is asked only about the entries old enough to go
    assert sorted(asked) == ["file:///landing/old-gone", "file:///landing/old-present"]


def test_a_log_reads_back_as_it_was_written() -> None:
    text = "v1\n" + "\n".join(e.line for e in [entry("a", 1, 0), entry("b", 2, 1)])
    assert render(parse(text)) == text
    assert render([]) == "v1"
    with pytest.raises(ValueError, match="version"):
        parse("v2\n{}")


def write_log(directory: Path, name: str, rows: list[tuple[Path, int, int]]) -> Path:
    lines = ["v1"] + [
        json.dumps({"path": p.as_uri(), "timestamp": ts, "batchId": i}) for p, ts, i in rows
    ]
    path = directory / name
    path.write_text("\n".join(lines))
    (directory / f".{name}.crc").write_bytes(b"stale")
    return path


def test_trim_rewrites_the_latest_compact_file_only(tmp_path: Path) -> None:
    files = landing_files(tmp_path, 4)
    root = checkpoint(tmp_path / "cp", {"0": {0: files[:1]}}, committed=[0, 1, 2])
    sources = root / "sources" / "0"
    (tmp_path / "landing" / INCOMING).mkdir()
    files[0].unlink()  # pruned
    files[1].unlink()
    day = 86_400_000
    old = write_log(sources, "9.compact", [(files[0], 0, 0), (files[1], 5 * day, 1)])
    latest = write_log(
        sources,
        "19.compact",
        [(files[0], 0, 0), (files[1], 5 * day, 1), (files[2], 6 * day, 2), (files[3], 0, 11)],
    )
    for batch, upto in {0: 0, 1: 1, 2: 2}.items():
        (root / "offsets" / str(batch)).write_text(f"v1\n{{}}\n{json.dumps({'logOffset': upto})}")
    done = source_log.trim(root, tmp_path / "landing", horizon_s=86_400)
    assert done is not None
    assert (done.before, done.after) == (4, 3)
    # file 0 went (old, committed, gone); file 1 is within a day of the newest; file 3 is
    # old but of id 11, which no committed batch read
    assert [e.path for e in parse(latest.read_text())] == [f.as_uri() for f in files[1:]]
    assert not (sources / ".19.compact.crc").exists()  # no longer matches the file
    assert len(parse(old.read_text())) == 2  # Spark deletes it; it is left as it is
    assert not list(sources.glob(".*.tmp"))
    assert source_log.trim(root, tmp_path / "landing", horizon_s=86_400) is None  # idempotent


def test_nothing_is_trimmed_while_the_landing_log_cannot_be_seen(tmp_path: Path) -> None:
    files = landing_files(tmp_path, 2)
    root = checkpoint(tmp_path / "cp", {"0": {0: files}}, committed=[0])
    write_log(root / "sources" / "0", "9.compact", [(files[0], 0, 0), (files[1], 10**10, 0)])
    for f in files:
        f.unlink()
    assert source_log.trim(root, tmp_path / "elsewhere", horizon_s=60) is None
    # an empty directory where the landing log was (a cut link's empty mount over it)
    assert source_log.trim(root, tmp_path / "landing", horizon_s=60) is None
    (tmp_path / "landing" / INCOMING).mkdir()  # the landing log itself, seen
    assert source_log.trim(root, tmp_path / "landing", horizon_s=60) is not None


def test_nothing_is_trimmed_before_a_batch_is_committed(tmp_path: Path) -> None:
    files = landing_files(tmp_path, 2)
    root = checkpoint(tmp_path / "cp", {"0": {0: files}}, committed=[])
    write_log(root / "sources" / "0", "9.compact", [(files[0], 0, 0), (files[1], 10**10, 0)])
    (tmp_path / "landing" / INCOMING).mkdir()
    files[0].unlink()
    assert source_log.trim(root, tmp_path / "landing", horizon_s=60) is None
