"""The file source's log stays bounded across sync runs: with pruning between runs, the
latest compact file holds only the files within the horizon of the newest (Spark's own
compaction would keep every file ever planned), Spark restarts from the trimmed log and
compacts on top of it, and every event is in the warehouse exactly once."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ray_jobs.sync import source_log, sync_events
from ray_jobs.sync.prune import local_path, prune_landing
from ray_jobs.sync.session import build_session
from services.topology.model import DataSpec
from tests.support.events import BASE_US, records
from tests.system.spark_world import make_world
from tests.system.test_sync_kill import read_through_log

HORIZON_S = 600
SPACING_S = 300  # between the landing files' modification times
ROUNDS, FILES_PER_ROUND = 4, 8


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session = build_session(DataSpec(), "isthmus-source-log-tests")
    yield session
    session.stop()


def test_the_file_source_log_keeps_only_the_horizon_once_files_are_pruned(
    spark: Any, tmp_path: Path
) -> None:
    world = make_world(tmp_path, max_files_per_trigger=1, late_data_horizon_s=HORIZON_S)
    checkpoint = world.locs.sync_checkpoint.path
    sources = checkpoint / "sources" / "0"
    first_mtime = int(time.time()) - 86_400
    mtimes: dict[Path, int] = {}
    landed: list[str] = []
    for round_ in range(ROUNDS):
        for i in range(FILES_PER_ROUND):
            n = round_ * FILES_PER_ROUND + i
            batch = records(20, users=["p_a", "p_b"], seed=n, prefix=f"r{n}-", now_us=BASE_US)
            path = world.landing.append(batch)
            mtimes[path] = first_mtime + n * SPACING_S
            os.utime(path, (mtimes[path], mtimes[path]))
            landed += [str(r["event_id"]) for r in batch]
        report = sync_events.run_available_now(spark, world.spec, world.locs)
        assert report.landing_lines == 20 * FILES_PER_ROUND  # each file read once, no more
        assert prune_landing(world.locs.landing.path, [checkpoint]) == FILES_PER_ROUND
    # a run with nothing new trims the compact file the last round wrote
    assert sync_events.run_available_now(spark, world.spec, world.locs).landing_lines == 0

    compact = source_log.latest_compact(sources)
    assert compact is not None
    assert compact.name == "29.compact"
    entries = source_log.parse(compact.read_text())
    in_compact = {local_path(e.path) for e in entries}
    newest = max(mtimes[p] for p in in_compact)
    assert in_compact == {p for p, t in mtimes.items() if newest - HORIZON_S <= t <= newest}
    assert len(in_compact) == HORIZON_S // SPACING_S + 1  # of the 30 Spark alone would keep

    warehouse = read_through_log(world.locs.events.path, "event_id")
    assert sorted(warehouse) == sorted(landed)
    assert [e for e, n in Counter(warehouse).items() if n > 1] == []
