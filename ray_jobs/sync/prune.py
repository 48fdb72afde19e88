"""Prune the public landing log of files the sync has finished with.

A landing file may go once every query that reads the landing log (events and quarantine)
has read it in a batch it committed: the file source's log (`sources/0/<batch>`, with
`<batch>.compact` every few batches holding all earlier entries) names the files of each
batch, and `commits/<batch>` marks a batch done. Spark's own `cleanSource` cannot do this
here because two queries read the same directory (its docs rule that out). Without pruning,
the landing log -- and everything that scans the public zone -- grows with every day.

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


def committed_files(checkpoint: Path) -> set[Path]:
    """Local paths of every source file in a committed batch of the query at `checkpoint`."""
    done = committed_batches(checkpoint)
    sources = checkpoint / "sources" / "0"
    if not sources.is_dir():
        return set()
    files: set[Path] = set()
    for entry in sources.iterdir():
        batch = entry.name.split(".", 1)[0]
        if not batch.isdigit() or int(batch) not in done:
            continue
        for line in entry.read_text().splitlines()[1:]:  # the first line is the version
            if line.strip():
                files.add(_local_path(json.loads(line)["path"]))
    return files


def prunable(checkpoints: list[Path]) -> set[Path]:
    """Files every query has committed (nothing when a query has no checkpoint yet)."""
    sets = [committed_files(c) for c in checkpoints]
    return set.intersection(*sets) if sets else set()


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


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path) if parsed.scheme == "file" else uri).resolve()
