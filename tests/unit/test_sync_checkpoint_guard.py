"""The checkpoint guard: a checkpoint and tables that agree pass (including a crash between
the tables' commits and the checkpoint's); a table ahead of the checkpoint's plan or behind
its commits is named, with why it matters."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_jobs.sync.checkpoint_guard import latest_batch, mismatches

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("planned", "committed", "tables"),
    [
        (None, None, {"events": None, "quarantine": None}),  # nothing yet
        (5, 5, {"events": 5, "quarantine": 5}),  # at rest
        (5, 4, {"events": 4, "quarantine": 4}),  # batch 5 planned, killed before writing
        (5, 4, {"events": 5, "quarantine": 4}),  # killed between the two tables
        (5, 4, {"events": 5, "quarantine": 5}),  # killed before the checkpoint's commit
        (0, None, {"events": 0, "quarantine": None}),  # the very first batch, half done
    ],
)
def test_a_checkpoint_and_tables_that_agree_pass(
    planned: int | None, committed: int | None, tables: dict[str, int | None]
) -> None:
    assert mismatches(planned, committed, tables) == []


def test_a_table_ahead_of_the_plan_means_a_lost_or_older_checkpoint() -> None:
    [lost] = mismatches(None, None, {"events": 7, "quarantine": None})
    assert lost.startswith("the events table has batches up to 7, the checkpoint has planned none")
    assert "checkpoint was lost" in lost
    found = mismatches(3, 3, {"events": 7, "quarantine": 7})
    assert [m.split(",")[0] for m in found] == [
        "the events table has batches up to 7",
        "the quarantine table has batches up to 7",
    ]
    assert all("planned only up to 3" in m for m in found)


def test_a_table_behind_the_commits_means_a_lost_or_older_table() -> None:
    [gone] = mismatches(9, 9, {"events": 9, "quarantine": None})
    assert gone.startswith("the quarantine table has no batch, the checkpoint has committed up")
    [older] = mismatches(9, 8, {"events": 5, "quarantine": 9})
    assert older.startswith("the events table has batches up to 5 only")
    assert "table was lost" in older


def test_the_latest_batch_counts_compact_files(tmp_path: Path) -> None:
    log = tmp_path / "t" / "_spark_metadata"
    assert latest_batch(tmp_path / "t") is None
    log.mkdir(parents=True)
    for name in ("8", "9.compact", "10", "11", ".11.crc", "12.tmp"):
        (log / name).write_text("v1\n")
    assert latest_batch(tmp_path / "t") == 11
