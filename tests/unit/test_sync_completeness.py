"""A committed batch must have read every landing file it planned: the check finds planned
files that are gone (from a batch's own source-log entry or from a compaction holding it),
records them and fails loudly; the next run lands a copy once they are back; pruning keeps
recorded files; a batch whose files are all there passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ray_jobs.sync import completeness
from ray_jobs.sync.prune import prunable

pytestmark = pytest.mark.unit


def source_log(checkpoint: Path, name: str, entries: list[tuple[Path, int]]) -> None:
    """sources/0/<name> as Spark's file source writes it (a version line, then one entry per
    planned file with its source log id), and batch n reading up to log id n."""
    directory = checkpoint / "sources" / "0"
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["v1"] + [
        json.dumps({"path": p.as_uri(), "timestamp": 1, "batchId": b}) for p, b in entries
    ]
    (directory / name).write_text("\n".join(lines) + "\n")
    for sub in ("offsets", "commits"):
        (checkpoint / sub).mkdir(exist_ok=True)
    for batch in {b for _, b in entries}:
        (checkpoint / "offsets" / str(batch)).write_text(f'v1\n{{}}\n{{"logOffset":{batch}}}')
        (checkpoint / "commits" / str(batch)).write_text("v1\n{}\n")


def landed(tmp_path: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = tmp_path / "landing" / "date=2026-11-30" / "hour=03" / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"event_id": name}) + "\n")
        paths.append(path)
    return paths


def test_planned_files_come_from_the_batch_entry_or_its_compaction(tmp_path: Path) -> None:
    a, b, c = landed(tmp_path, "a", "b", "c")
    ckpt = tmp_path / "ckpt"
    source_log(ckpt, "9.compact", [(a, 8), (b, 9)])
    source_log(ckpt, "10", [(c, 10)])
    c.unlink()
    b.unlink()
    assert completeness.unread(ckpt, [8, 9, 10, 11]) == {9: [b], 10: [c]}


def test_a_batch_with_every_planned_file_present_passes(tmp_path: Path) -> None:
    a, b = landed(tmp_path, "a", "b")
    ckpt = tmp_path / "ckpt"
    source_log(ckpt, "0", [(a, 0), (b, 0)])
    completeness.check({ckpt: {0}})
    assert not (ckpt / completeness.RECORDS).exists()


def test_missing_planned_files_are_recorded_kept_from_pruning_and_relanded(
    tmp_path: Path,
) -> None:
    a, b = landed(tmp_path, "a", "b")
    events, quarantine = tmp_path / "events", tmp_path / "quarantine"
    for ckpt in (events, quarantine):
        source_log(ckpt, "0", [(a, 0), (b, 0)])
    aside = tmp_path / "aside.jsonl"
    b.rename(aside)  # the path to b is cut while the batch reads
    with pytest.raises(completeness.SyncIncomplete, match=r"1 landing file\(s\).*events batch"):
        completeness.check({events: {0}, quarantine: set()})
    assert completeness.recorded([events, quarantine]) == {b}
    aside.rename(b)  # healed
    assert prunable([events, quarantine]) == {a}  # b waits to be landed again
    # a later run, while b were still unreachable, keeps the record
    b.rename(aside)
    assert completeness.reland([events, quarantine]) == 0
    assert completeness.recorded([events]) == {b}
    aside.rename(b)
    assert completeness.reland([events, quarantine]) == 1
    copy = completeness.relanded_name(b)
    assert copy.read_text() == b.read_text()
    assert copy.match("date=*/hour=*/*.jsonl")  # the source's glob reads it as new
    assert completeness.recorded([events, quarantine]) == set()
    assert prunable([events, quarantine]) == {a, b}
    assert completeness.reland([events, quarantine]) == 0  # nothing twice


def test_a_batch_committed_by_a_run_killed_before_its_check_is_checked_by_the_next(
    tmp_path: Path,
) -> None:
    a, b, c = landed(tmp_path, "a", "b", "c")
    ckpt = tmp_path / "ckpt"
    source_log(ckpt, "0", [(a, 0)])
    source_log(ckpt, "1", [(b, 1)])
    # a checkpoint from before the record: the batches before this run count as checked
    assert completeness.unchecked(ckpt, {0, 1}, before={0}) == {1}
    completeness.check({ckpt: {1}})
    assert completeness.checked_upto(ckpt) == 1
    # batch 2 committed, then the run was killed before its check: no later run's `before`
    # would leave it out
    source_log(ckpt, "2", [(c, 2)])
    assert completeness.unchecked(ckpt, {0, 1, 2}, before={0, 1, 2}) == {2}
    c.unlink()  # gone meanwhile (a cut link): pruning must not take it for done ...
    assert prunable([ckpt]) == {a, b}
    with pytest.raises(completeness.SyncIncomplete):  # ... and the next check finds it
        completeness.check({ckpt: {2}})
    assert completeness.checked_upto(ckpt) == 2  # recorded: the reland takes it from here
    assert completeness.recorded([ckpt]) == {c}
