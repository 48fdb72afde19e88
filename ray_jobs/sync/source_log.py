"""Keep the file source's log (`sources/0/` in the sync's checkpoint) from growing forever.

Spark's file source records every landing file it plans, by source log id, and every
`spark.sql.streaming.fileSource.log.compactInterval` ids (10) writes `<id>.compact` holding
all entries so far; older log files are deleted once a compact file covers them (after
`fileSource.log.cleanupDelay`, 10 minutes). Its compaction keeps every entry ever written
(`FileStreamSourceLog.compactLogs` returns its input), so a sync that runs for months
rewrites an ever larger compact file every ten batches and reads all of it at every start.

What Spark itself does with an old entry: on start it loads the log into its seen-files
map, then purges every path whose modification time is older than the newest one's minus
`maxFileAge` (the sync sets it to `late_data_horizon_s`), and from then on takes any file
that old for an old file -- seen or not. So such an entry changes nothing Spark decides.
It still matters to us: pruning and the landing erasure find the files the sync has
committed in this log (`prune.committed_files`).

So, between runs (no query running: the continuous sync runs back-to-back availableNow
queries under the warehouse lock), `trim` rewrites the latest compact file without the
entries that are

- older than the newest entry in it minus the horizon (Spark ignores them), and
- of a source log id a settled batch read (`prune.settled_offset`: committed and checked
  for completeness; a batch to be re-run re-reads its own ids, and a batch still to be
  checked needs its entries for the check), and
- of a file no longer in the landing directory (pruned, or emptied by an erasure).

The log then holds the files of the last horizon plus those still waiting in the landing
directory: bounded by the landing rate times the horizon, once pruning runs. Nothing is
trimmed unless the landing log itself is seen -- its staging directory `_incoming/`, which
the events service keeps there -- since a cut link makes every file look gone (the
`sync-partition` drill's cut is an empty mount over the directory, which still "is" one).
Dropping the entry of a file that is in fact still there would hide it from pruning and
from the erasure's landing purge for good.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ray_jobs.sync.prune import local_path, settled_offset
from ray_jobs.sync.sinklog import replace_file
from services.public.events.landing import INCOMING

log = logging.getLogger(__name__)

VERSION_LINE = "v1"
COMPACT = ".compact"


@dataclass(frozen=True, slots=True)
class Entry:
    """One planned file: Spark's `FileEntry` (path URI, modification time ms, source log
    id), with the line it was read from (written back byte for byte)."""

    path: str
    timestamp_ms: int
    log_id: int
    line: str


@dataclass(frozen=True, slots=True)
class Trimmed:
    file: Path
    before: int
    after: int


def parse(text: str) -> list[Entry]:
    """The entries of a source log file (a version line, then one JSON entry per line)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != VERSION_LINE:
        raise ValueError(f"file source log: unsupported version line {lines[:1]!r}")
    entries = []
    for line in lines[1:]:
        if line.strip():
            record = json.loads(line)
            entries.append(
                Entry(str(record["path"]), int(record["timestamp"]), int(record["batchId"]), line)
            )
    return entries


def render(entries: list[Entry]) -> str:
    """The file's text as Spark writes it: the version line, then one line per entry."""
    return "".join([VERSION_LINE, *("\n" + e.line for e in entries)])


def kept(
    entries: list[Entry], horizon_ms: int, committed_upto: int, present: Callable[[str], bool]
) -> list[Entry]:
    """The entries to keep (pure but for `present`, asked only of trim candidates): an
    entry goes when it is older than the newest minus the horizon, its log id is at most
    `committed_upto` and its file is not present."""
    if not entries:
        return entries
    floor = max(e.timestamp_ms for e in entries) - horizon_ms
    return [
        e
        for e in entries
        if e.timestamp_ms >= floor or e.log_id > committed_upto or present(e.path)
    ]


def latest_compact(sources: Path) -> Path | None:
    """The compact file with the highest id in a source log directory, if any."""
    found = [
        (int(p.name[: -len(COMPACT)]), p)
        for p in sources.glob(f"*{COMPACT}")
        if p.name[: -len(COMPACT)].isdigit()
    ]
    return max(found)[1] if found else None


def trim(checkpoint: Path, landing: Path, horizon_s: int) -> Trimmed | None:
    """Rewrite the latest compact file of the query at `checkpoint` without the entries
    `kept` lets go (atomically; Hadoop's checksum side file removed first). None when there
    was nothing to do. Only while no query runs on this checkpoint."""
    compact = latest_compact(checkpoint / "sources" / "0")
    if compact is None or not (landing / INCOMING).is_dir():
        return None
    upto = settled_offset(checkpoint)
    if upto is None:
        return None
    entries = parse(compact.read_text())
    remaining = kept(entries, horizon_s * 1000, upto, lambda uri: local_path(uri).is_file())
    if len(remaining) == len(entries):
        return None
    replace_file(compact, render(remaining).encode())
    log.info("file source log %s: %d -> %d entries", compact.name, len(entries), len(remaining))
    return Trimmed(compact, len(entries), len(remaining))
