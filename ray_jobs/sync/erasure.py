"""Erasure: remove erased people's rows from the private warehouse, physically.

The warehouse event table is an append-only Structured Streaming file sink whose
`_spark_metadata` log (and the checkpoint behind it) make the sync exactly-once, so the
table cannot simply be rewritten by a batch job. Instead, between sync runs (the same lock
the sync takes; a continuous sync lets go of it between its runs, and `erase` waits):

1. the erased pseudonymous ids are read from the private DB (`erasures` table) and written
   to `<warehouse>/erasures/erasures.parquet` (atomic replace); every later sync run
   anti-joins it, so events of an erased id that arrive later never land;
2. a journal (`<sink>/_erasure_journal.json`, ignored by Spark readers: leading underscore)
   lists the committed part files that hold an erased id;
3. each of them is rewritten in place under the same name without those rows (temp file +
   fsync + rename; its Hadoop .crc side file is removed);
4. the sink log's entries for those files get the new sizes (`sinklog.update_sizes`), and
   the journal is deleted.

5. the public landing log: every landing file the sync has committed (the files pruning
   would delete) is rewritten without the lines that carry an erased id, or deleted when
   none is left; files not yet synced are left for the sync to read (its anti-join keeps
   their erased events out) and are purged by the next `erase` once it has.

Batch ids, offsets, commits and dedup state are untouched, so exactly-once holds afterwards:
the sink log still lists the same files and the next batch id is unchanged. A crash in
steps 3-4 leaves the journal; the next `erase` redoes it (filtering is idempotent). The
quarantine table (raw lines mentioning the id) and training sets get the same rewrite.
Published feature snapshots are not rewritten (their checksums would no longer match): the
next export leaves the person out, and older versions age out after `keep_snapshots`.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ray_jobs.sync import sinklog
from ray_jobs.sync.config import Locations
from services.core import pseudonym
from services.core.durable import fsync_dir, write_synced

KEY = "pseudonymous_user_id"
LOCK_POLL_S = 0.05
JOURNAL = "_erasure_journal.json"
ERASURES_FILE = "erasures.parquet"
Mask = Callable[[pa.Table], pa.Array]  # True = drop the row


class SyncBusy(RuntimeError):
    """Another sync or erase holds the warehouse lock."""


@contextmanager
def warehouse_lock(locs: Locations, wait_s: float = 0.0) -> Iterator[None]:
    """Exclusive lock shared by `sync events` and `erase` (a flock: a killed holder releases
    it), waiting up to `wait_s` for a holder to let go -- a continuous sync lets go between
    its runs, so an erase that waits gets in at a run's boundary. Local checkpoints only;
    elsewhere the scheduler must not overlap them."""
    if not locs.sync_checkpoint.is_local:
        yield
        return
    path = locs.sync_checkpoint.path.parent / "sync.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    with open(path, "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SyncBusy(f"{path} is held: a sync or erase is running") from None
                time.sleep(LOCK_POLL_S)
        yield


@dataclass(frozen=True)
class EraseReport:
    erased_ids: int
    files_rewritten: int
    rows_removed: int
    landing_files_rewritten: int = 0
    landing_lines_removed: int = 0


def write_erasure_table(locs: Locations, erased: list[str]) -> None:
    directory = locs.erasures.path
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table({KEY: pa.array(sorted(set(erased)), pa.string())})
    temp = directory / f".{ERASURES_FILE}.tmp"
    pq.write_table(table, temp)
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.rename(temp, directory / ERASURES_FILE)
    fsync_dir(directory)


def key_mask(erased: set[str]) -> Mask:
    value_set = pa.array(sorted(erased), pa.string())
    return lambda table: pc.fill_null(pc.is_in(table[KEY], value_set=value_set), False)


def line_mask(erased: set[str]) -> Mask:
    def mask(table: pa.Table) -> pa.Array:
        hit = pa.array([False] * table.num_rows, pa.bool_())
        for pid in erased:
            found = pc.fill_null(pc.match_substring(table["line"], pid), False)
            hit = pc.or_(hit, found)
        return hit

    return mask


def rewrite(path: Path, mask: Mask) -> int:
    """Rewrite one parquet file without the masked rows, same name; returns rows removed."""
    table = pq.ParquetFile(path).read()
    drop = mask(table)
    removed = int(pc.sum(drop).as_py() or 0)
    if removed == 0:
        return 0
    kept = table.filter(pc.invert(drop))
    temp = path.with_name(f".{path.name}.erasing")
    pq.write_table(kept, temp, compression="snappy")
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.rename(temp, path)
    path.with_name(f".{path.name}.crc").unlink(missing_ok=True)
    fsync_dir(path.parent)
    return removed


def purge_sink(sink: Path, mask: Mask, columns: list[str]) -> tuple[int, int]:
    """Journal, rewrite and re-log the committed files of one file sink that hold masked
    rows. Returns (files rewritten, rows removed)."""
    journal = sink / JOURNAL
    pending = [Path(p) for p in json.loads(journal.read_text())] if journal.exists() else []
    for path in sinklog.live_files(sink):
        if path not in pending and _any(mask(pq.ParquetFile(path).read(columns=columns))):
            pending.append(path)
    if not pending:
        return 0, 0
    write_synced(journal, json.dumps([str(p) for p in pending]).encode())
    fsync_dir(sink)
    removed = sum(rewrite(path, mask) for path in pending)
    sinklog.update_sizes(sink, pending)
    journal.unlink()
    fsync_dir(sink)
    return len(pending), removed


def purge_plain(root: Path, mask: Mask) -> tuple[int, int]:
    """Batch outputs (training sets): every parquet file under `root`."""
    files = removed = 0
    for path in sorted(root.rglob("*.parquet")) if root.is_dir() else []:
        n = rewrite(path, mask)
        files += n > 0
        removed += n
    return files, removed


def erase(locs: Locations, erased: list[str], wait_s: float = 0.0) -> EraseReport:
    """Apply every erasure recorded in the private DB to the warehouse (idempotent), once
    the warehouse lock is free (waiting up to `wait_s` for a sync's run to end)."""
    # Each id also in the form minted before pseudonymous ids had check characters: rows
    # landed then carry that form.
    ids = pseudonym.with_legacy_forms(set(erased))
    with warehouse_lock(locs, wait_s):
        write_erasure_table(locs, sorted(ids))
        if not ids:
            return EraseReport(0, 0, 0)
        results = [
            purge_sink(locs.events.path, key_mask(ids), [KEY]),
            purge_sink(locs.quarantine.path, line_mask(ids), ["line"]),
            purge_plain(locs.training.path, key_mask(ids)),
        ]
        landing = purge_landing(locs, ids) if locs.landing.is_local else (0, 0)
    return EraseReport(
        len(set(erased)), sum(r[0] for r in results), sum(r[1] for r in results), *landing
    )


def erased_line(line: str, ids: set[str]) -> bool:
    """Whether a landing line carries an erased id: its `pseudonymous_user_id`, or, for a
    line that is not a JSON object (the quarantine's kind), the id anywhere in it (pure)."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if isinstance(record, dict):
        value = record.get(KEY)
        return isinstance(value, str) and value in ids
    return any(pid in line for pid in ids)


def purge_landing(locs: Locations, ids: set[str]) -> tuple[int, int]:
    """Rewrite (or delete, when emptied) the landing files the sync has committed that
    carry an erased id; returns (files changed, lines removed). Idempotent."""
    from ray_jobs.sync.prune import prunable

    root = locs.landing.path.resolve()
    checkpoints = [locs.sync_checkpoint.path]
    files = lines_removed = 0
    for path in sorted(prunable(checkpoints)):
        if root not in path.parents or not path.is_file():
            continue
        lines = path.read_text().splitlines()
        kept = [line for line in lines if not erased_line(line, ids)]
        if len(kept) == len(lines):
            continue
        if kept:
            temp = path.with_name(f".{path.name}.erasing")
            write_synced(temp, ("\n".join(kept) + "\n").encode())
            # Keep the file's age: Spark's file source forgets a path after maxFileAge and
            # would take a file that looks new for a new one (the quarantine would read it
            # again).
            before = path.stat()
            os.utime(temp, ns=(before.st_atime_ns, before.st_mtime_ns))
            os.rename(temp, path)
        else:
            path.unlink()
        fsync_dir(path.parent)
        files += 1
        lines_removed += len(lines) - len(kept)
    return files, lines_removed


def _any(values: pa.Array) -> bool:
    return bool(pc.any(values).as_py())
