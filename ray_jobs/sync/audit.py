"""`isthmus sync audit`: is the warehouse's event table exactly once, as committed? Read
without Spark (pyarrow and the sink's own log), so it runs beside a live sync and as a
Kubernetes Job after a drill.

Three counts:
- extra copies: event ids that the committed part files (the sink's `_spark_metadata` log,
  never a directory listing) hold more than once. A batch killed after writing its files
  but before committing them, and then replayed, is what would make these.
- unread records: batches the completeness check found committed without some of their
  planned landing files (completeness.py), not yet caught up by a later run: events missing
  from the warehouse until they are.
- debris files: part files in the table's directory that no log entry names (killed
  batches' leftovers; harmless, reported so an operator is not surprised by them).

Exactly once = no extra copy and no pending record. Events missing for any other reason
cannot be seen from the private side alone: the sync's completeness check fails the run
that would have lost them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ray_jobs.sync.completeness import RECORDS
from ray_jobs.sync.config import Locations
from ray_jobs.sync.sinklog import METADATA, live_files


@dataclass(frozen=True)
class Audit:
    events: int
    extra_copies: int
    duplicated_ids: int
    unread_records: int
    debris_files: int

    @property
    def exactly_once(self) -> bool:
        return self.extra_copies == 0 and self.unread_records == 0


def extra_copies(event_ids: list[str]) -> tuple[int, int]:
    """(copies beyond the first, ids with more than one) (pure)."""
    counts = Counter(event_ids)
    repeated = [n for n in counts.values() if n > 1]
    return sum(n - 1 for n in repeated), len(repeated)


def audit(locs: Locations) -> Audit:
    import pyarrow.parquet as pq

    sink = locs.events.path
    live = live_files(sink)
    ids: list[str] = []
    for part in live:
        ids.extend(pq.read_table(part, columns=["event_id"]).column(0).to_pylist())
    extra, duplicated = extra_copies(ids)
    records = sum(
        len(list((checkpoint / RECORDS).glob("*.json")))
        for checkpoint in (locs.sync_checkpoint.path,)
        if (checkpoint / RECORDS).is_dir()
    )
    return Audit(len(ids), extra, duplicated, records, len(_debris(sink, live)))


def _debris(sink: Path, live: list[Path]) -> list[Path]:
    if not sink.is_dir():
        return []
    named = {p.resolve() for p in live}
    return [
        p for p in sink.rglob("*.parquet") if METADATA not in p.parts and p.resolve() not in named
    ]
