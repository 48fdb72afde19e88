"""A batch the sync commits must have read every landing file it planned.

Spark's file source plans a micro-batch (the files, in `sources/0/<batch>` of the query's
checkpoint) and only then lists those files to read them; a planned file that cannot be found
at that moment is skipped without an error (the source treats each file as a root path of its
read, and a missing root path is ignored). The batch then commits without the file's events,
the source never offers the file again, and pruning would delete it. A landing directory that
drops out from under the job mid-batch -- the `sync-partition` drill cuts it exactly there --
lost every event of the cut batch that way.

So after each run the sync checks the files of the batches it committed (prune.planned_in
reads them from the checkpoint): any that is not
there is recorded under the checkpoint (`_isthmus_unread/<batch>.json`) and the run fails
loudly; the next run, once the files are back, lands a copy of each under a new name, which
the source reads like any new file (the sync's event-id deduplication keeps a file
read twice from counting twice), and drops the record. Pruning keeps recorded files.

The check's own progress is kept too (`_isthmus_checked`: the last batch id it has
checked): a run killed after Spark committed a batch and before the check leaves that batch
to the next run's check, and until then pruning, the landing erasure and the trim of the
file source's log leave its files and entries alone (`prune.settled_offset`).

Local paths only (the landing is a directory here); a bucket's reads fail with an error
rather than a silent skip, so remote landings need no such check.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from ray_jobs.sync.prune import planned_in, source_entries

RECORDS = "_isthmus_unread"
CHECKED = "_isthmus_checked"


class SyncIncomplete(RuntimeError):
    """A committed batch could not read some of its planned files (recorded for the next run)."""


def unread(checkpoint: Path, batches: Iterable[int]) -> dict[int, list[Path]]:
    """Per batch, its planned files that are not there now (batches with none left out)."""
    found: dict[int, list[Path]] = {}
    wanted = sorted(set(batches))
    entries = source_entries(checkpoint) if wanted else {}  # read once, for every batch
    for batch in wanted:
        planned = planned_in(checkpoint, batch, entries)
        gone = sorted(path for path in planned if not path.is_file())
        if gone:
            found[batch] = gone
    return found


def record(checkpoint: Path, found: dict[int, list[Path]]) -> None:
    directory = checkpoint / RECORDS
    directory.mkdir(parents=True, exist_ok=True)
    for batch, paths in found.items():
        target = directory / f"{batch}.json"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps([str(p) for p in paths]))
        os.replace(temporary, target)


def recorded(checkpoints: Iterable[Path]) -> set[Path]:
    """Every file some checkpoint records as unread (pruning must keep these)."""
    paths: set[Path] = set()
    for checkpoint in checkpoints:
        for entry in sorted((checkpoint / RECORDS).glob("*.json")):
            paths.update(Path(p) for p in json.loads(entry.read_text()))
    return paths


def relanded_name(path: Path) -> Path:
    """The copy's name: new to the source, still matching the landing glob (`*.jsonl`)."""
    return path.with_name(f"{path.stem}.relanded.jsonl")


def reland(checkpoints: list[Path]) -> int:
    """Land a copy of every recorded file that is readable again, then drop the records
    whose files are all relanded. Returns how many files were relanded."""
    done = 0
    for checkpoint in checkpoints:
        for entry in sorted((checkpoint / RECORDS).glob("*.json")):
            paths = [Path(p) for p in json.loads(entry.read_text())]
            if not all(p.is_file() for p in paths):
                continue  # still unreachable: keep the record for a later run
            for path in paths:
                copy = relanded_name(path)
                if not copy.exists():
                    temporary = copy.with_name(f".{copy.name}.tmp")  # hidden: not input
                    shutil.copyfile(path, temporary)
                    os.replace(temporary, copy)
                    done += 1
            entry.unlink()
    return done


def checked_upto(checkpoint: Path) -> int | None:
    """The last batch id the check has done at `checkpoint` (None: no run has recorded it;
    a checkpoint from before this record: its batches were checked by their own runs)."""
    path = checkpoint / CHECKED
    return int(path.read_text()) if path.is_file() else None


def unchecked(checkpoint: Path, committed: set[int], before: set[int]) -> set[int]:
    """Which of the `committed` batches the check has not done yet (pure but for the read of
    `checked_upto`); `before`: the batches committed before this run, taken as checked
    when the checkpoint has no record yet."""
    done = checked_upto(checkpoint)
    upto = max(before, default=-1) if done is None else done
    return {batch for batch in committed if batch > upto}


def mark_checked(checkpoint: Path, batch: int) -> None:
    target = checkpoint / CHECKED
    temporary = target.with_name(f".{CHECKED}.tmp")
    temporary.write_text(str(batch))
    os.replace(temporary, target)


def check(committed: dict[Path, set[int]]) -> None:
    """Record, then raise, if any query committed a batch (`committed`: per checkpoint, the
    batches to check) without reading one of its planned files. The batches are marked
    checked either way: those with unread files are in the record, for the next run."""
    count, where = 0, []
    for checkpoint, batches in committed.items():
        found = unread(checkpoint, batches)
        if found:
            record(checkpoint, found)
            count += sum(len(paths) for paths in found.values())
            where.append(f"{checkpoint.name} batch(es) {sorted(found)}")
        if batches:
            mark_checked(checkpoint, max(batches))
    if count:
        raise SyncIncomplete(
            f"{count} landing file(s) planned in {'; '.join(where)} were not there when read "
            f"(the landing was unreachable?); recorded under {RECORDS}/ in the checkpoint; "
            "the next run lands them again"
        )
