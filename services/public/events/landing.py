"""The append-only landing log the Spark sync reads.

Each accepted batch becomes one JSON-lines file, written aside in `_incoming/`, fsynced,
renamed into `date=YYYY-MM-DD/hour=HH/` (ingest time, UTC) and the directory fsynced: the
Track call is acknowledged only after that, so an acknowledged event survives kill -9.
A small SQLite index of event ids answers "already recorded?" so replays are reported as
DUPLICATE and not written again. It is updated after the file is durable: a crash in between
can let a replay be written twice, which the sync job's cross-batch dedup removes (the log
promises at-least-once; the warehouse promises exactly-once).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from services.core.durable import fsync_dir, write_synced

INCOMING = "_incoming"


class LandingLog:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / INCOMING).mkdir(parents=True, exist_ok=True)
        self._index = sqlite3.connect(root / "_event_index.db", check_same_thread=False)
        self._index.execute("PRAGMA journal_mode=WAL")
        self._index.execute("PRAGMA synchronous=FULL")
        self._index.execute("CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY)")
        self._lock = threading.Lock()

    def known(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(event_ids)
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                # Only "?" placeholders are formatted in; the ids are bound parameters.
                marks = ",".join("?" * len(chunk))
                query = f"SELECT event_id FROM seen WHERE event_id IN ({marks})"  # noqa: S608
                rows = self._index.execute(query, chunk).fetchall()
                found.update(r[0] for r in rows)
        return found

    def append(self, records: list[dict[str, object]], now_s: float | None = None) -> Path:
        """Make `records` durable as one file; returns its path."""
        now_s = time.time() if now_s is None else now_s
        stamp = time.gmtime(now_s)
        partition = self.root / time.strftime("date=%Y-%m-%d/hour=%H", stamp)
        partition.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S', stamp)}-{uuid.uuid4().hex}.jsonl"
        staging = self.root / INCOMING / name
        lines = [json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records]
        write_synced(staging, b"".join(lines))
        final = partition / name
        os.rename(staging, final)
        fsync_dir(partition)
        with self._lock:
            self._index.executemany(
                "INSERT OR IGNORE INTO seen (event_id) VALUES (?)",
                [(str(r["event_id"]),) for r in records],
            )
            self._index.commit()
        return final

    def close(self) -> None:
        self._index.close()
