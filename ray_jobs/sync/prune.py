"""Prune the public landing log of files the sync has finished with.

A landing file may go once the sync's query (every query that reads the landing log, if
there were more) has read it in a batch it committed: `commits/<batch>` marks a batch done,
`offsets/<batch>` says up to which source log id it read, and the file source's log
(`sources/0/<id>`, with `<id>.compact` every few ids holding all earlier entries) names the
files of each id. (Batch ids are not source log ids: reading `sources/0/<batch>` as batch
<batch>'s files, as this module once did, pruned files of a planned but uncommitted batch.)
Spark's own `cleanSource` was ruled out while two queries read the directory (its docs
forbid that); one query reads it now, so it could be tried, but pruning stays an explicit
step here. Without pruning, the landing log -- and everything that scans the public zone --
grows every day.

Pure reading of the checkpoints; the only I/O that changes anything is `prune_landing`.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlparse


def committed_batches(checkpoint: Path) -> set[int]:
    commits = checkpoint / "commits"
    if not commits.is_dir():
        return set()
    return {int(p.name) for p in commits.iterdir() if p.name.isdigit()}


def source_offset(checkpoint: Path, batch: int) -> int | None:
    """The file source's log offset that batch `batch` read up to (`offsets/<batch>`: a
    version line, the batch's metadata, then the source's offset), or None when unplanned.
    Batch ids and source log ids differ: a stateful query also runs batches without new
    files (to move its watermark), which plan no new source entries."""
    entry = checkpoint / "offsets" / str(batch)
    if batch < 0 or not entry.is_file():
        return None
    lines = [line for line in entry.read_text().splitlines() if line.strip()]
    offset = json.loads(lines[-1]).get("logOffset") if len(lines) >= 3 else None
    return int(offset) if offset is not None else None


def source_entries(checkpoint: Path) -> dict[int, set[Path]]:
    """Every file the source has planned, by source log id (from `sources/0/<id>` and the
    `<id>.compact` files that hold all entries up to theirs)."""
    sources = checkpoint / "sources" / "0"
    entries: dict[int, set[Path]] = {}
    if not sources.is_dir():
        return entries
    for log in sources.iterdir():
        if not log.name.split(".", 1)[0].isdigit() or log.name.endswith(".crc"):
            continue
        for line in log.read_text().splitlines()[1:]:  # the first line is the version
            if line.strip():
                record = json.loads(line)
                entries.setdefault(int(record["batchId"]), set()).add(local_path(record["path"]))
    return entries


def planned_in(
    checkpoint: Path, batch: int, entries: dict[int, set[Path]] | None = None
) -> set[Path]:
    """The files batch `batch` planned: source log ids after the previous batch's offset, up
    to its own. `entries`: source_entries(checkpoint), when the caller has read them already."""
    upto = source_offset(checkpoint, batch)
    if upto is None:
        return set()
    after = source_offset(checkpoint, batch - 1)
    return _files_between(entries or source_entries(checkpoint), after, upto)


def settled_offset(checkpoint: Path) -> int | None:
    """The source log offset of the latest batch that is committed and that the completeness
    check has done (a batch committed by a run killed before its check is not settled: the
    next run checks it); None before any."""
    from ray_jobs.sync.completeness import checked_upto

    done = committed_batches(checkpoint)
    if not done:
        return None
    checked = checked_upto(checkpoint)
    batch = max(done) if checked is None else min(max(done), checked)
    return source_offset(checkpoint, batch)


def committed_files(checkpoint: Path) -> set[Path]:
    """Local paths of every source file the query at `checkpoint` has read in a settled
    batch: source log ids up to `settled_offset`."""
    upto = settled_offset(checkpoint)
    if upto is None:
        return set()
    return _files_between(source_entries(checkpoint), None, upto)


def _files_between(entries: dict[int, set[Path]], after: int | None, upto: int) -> set[Path]:
    """Files of the source log ids in (after, upto]; `after` None = from the first."""
    low = -1 if after is None else after
    files: set[Path] = set()
    for log_id, paths in entries.items():
        if low < log_id <= upto:
            files |= paths
    return files


def prunable(checkpoints: list[Path]) -> set[Path]:
    """Files every query has committed (nothing when a query has no checkpoint yet), except
    those a committed batch did not read (completeness.py: they wait to be landed again)."""
    from ray_jobs.sync.completeness import recorded

    sets = [committed_files(c) for c in checkpoints]
    return (set.intersection(*sets) - recorded(checkpoints)) if sets else set()


def prune_landing(landing: Path, checkpoints: list[Path]) -> int:
    """Delete landing files under `landing` that every query has committed; returns how
    many. Files outside `landing` are never touched."""
    root = landing.resolve()
    removed = 0
    for path in prunable(checkpoints):
        if root in path.parents and path.is_file():
            path.unlink()
            removed += 1
    return removed


def local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path) if parsed.scheme == "file" else uri).resolve()
