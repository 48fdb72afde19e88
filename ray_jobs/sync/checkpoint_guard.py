"""Refuse to run the sync on a checkpoint that does not belong with its tables.

The sync's exactly-once rests on two records agreeing: the query's checkpoint (which files
each batch id read, which batches are done) and each table's `_spark_metadata` log (which
batch ids it has committed; it skips any id up to its latest). Lose one, or put back an
older copy of one, and Spark carries on without a word:

- a table ahead of the checkpoint (the checkpoint lost, or restored from an older copy):
  the query numbers its batches again from where the checkpoint left off, and each table
  skips every id it already has -- the events of those batches never reach it, while files
  synced before are read again;
- a table behind the checkpoint's commits (the table lost or restored from an older copy):
  the query never runs those batches again, so their events are gone from the table.

In steady state neither can happen: a batch is committed in the checkpoint only after both
tables committed it, and a table commits only batch ids the checkpoint planned. So the sync
checks before each run and stops with what it found and what to do
(`CheckpointMismatch`). Local checkpoints and tables only, like the completeness check.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ray_jobs.sync.prune import committed_batches
from ray_jobs.sync.sinklog import log_files


class CheckpointMismatch(RuntimeError):
    """The sync's checkpoint and its tables disagree about which batches exist."""


def planned_batches(checkpoint: Path) -> set[int]:
    """Batch ids the checkpoint has planned (`offsets/<id>`; the last 100 are kept)."""
    offsets = checkpoint / "offsets"
    if not offsets.is_dir():
        return set()
    return {int(p.name) for p in offsets.iterdir() if p.name.isdigit()}


def latest_batch(table: Path) -> int | None:
    """The last batch id a file sink's log has committed (None: no log, no batch)."""
    files = log_files(table)
    return int(files[-1].name.split(".", 1)[0]) if files else None


def mismatches(
    planned: int | None, committed: int | None, tables: Mapping[str, int | None]
) -> list[str]:
    """What is wrong, one sentence per table (pure): `planned` and `committed` are the
    checkpoint's latest planned and committed batch ids, `tables` each table's latest."""
    found = []
    for name, latest in sorted(tables.items()):
        if latest is not None and (planned is None or latest > planned):
            has = "none" if planned is None else f"only up to {planned}"
            found.append(
                f"the {name} table has batches up to {latest}, the checkpoint has planned {has} "
                "(the checkpoint was lost or replaced by an older copy: a run would number its "
                "batches again and the table would skip them, losing their events)"
            )
        elif committed is not None and (latest is None or latest < committed):
            has = "no batch" if latest is None else f"batches up to {latest} only"
            found.append(
                f"the {name} table has {has}, the checkpoint has committed up to {committed} "
                "(the table was lost or replaced by an older copy: those batches never run "
                "again)"
            )
    return found


def check(checkpoint: Path, tables: Mapping[str, Path]) -> None:
    """Raise CheckpointMismatch when the checkpoint and the tables disagree."""
    planned, committed = planned_batches(checkpoint), committed_batches(checkpoint)
    found = mismatches(
        max(planned, default=None),
        max(committed, default=None),
        {name: latest_batch(path) for name, path in tables.items()},
    )
    if found:
        raise CheckpointMismatch(
            f"the sync will not start on {checkpoint}: {'; '.join(found)}. Put back the "
            "checkpoint and the tables' _spark_metadata logs as they were together; or, to "
            "sync anew, move the checkpoint and both tables aside together (landing files not "
            "yet pruned are synced again)"
        )
