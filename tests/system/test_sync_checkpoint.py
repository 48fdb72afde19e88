"""The sync's checkpoint over time, on a real Spark session.

- The file source's log stays bounded across runs: with pruning between runs, the latest
  compact file holds only the files within the horizon of the newest (Spark's own
  compaction would keep every file ever planned), Spark restarts from the trimmed log and
  compacts on top of it, and every event is in the warehouse exactly once.
- A checkpoint that does not belong with the tables (lost, or a table lost) is refused
  before anything is written, by the library and by the CLI; put back, the sync carries on
  exactly once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ray_jobs.sync import sinklog, source_log, sync_events
from ray_jobs.sync.checkpoint_guard import CheckpointMismatch
from ray_jobs.sync.prune import local_path
from ray_jobs.sync.session import build_session
from services.topology.model import DataSpec
from tests.support.events import BASE_US, records
from tests.system.spark_world import land_events, make_world
from tests.system.test_sync_kill import read_through_log

ROOT = Path(__file__).resolve().parents[2]
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
        report = sync_events.run_available_now(spark, world.spec, world.locs, prune=True)
        assert report.landing_lines == 20 * FILES_PER_ROUND  # each file read once, no more
        assert report.pruned_files == FILES_PER_ROUND
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


def test_a_lost_checkpoint_or_table_is_refused_before_anything_is_written(
    spark: Any, tmp_path: Path
) -> None:
    world = make_world(tmp_path)
    locs = world.locs
    landed = land_events(world, 80, seed=1, prefix="a")
    sync_events.run_available_now(spark, world.spec, locs)
    checkpoint, aside = locs.sync_checkpoint.path, tmp_path / "checkpoint-aside"
    landed += land_events(world, 40, seed=2, prefix="b")

    def logs() -> dict[str, list[str]]:
        return {
            name: sorted(p.name for p in (table / sinklog.METADATA).iterdir())
            for name, table in (("events", locs.events.path), ("quarantine", locs.quarantine.path))
        }

    before = logs()
    shutil.move(checkpoint, aside)  # the checkpoint is lost
    with pytest.raises(CheckpointMismatch, match="events table has batches up to 0"):
        sync_events.run_available_now(spark, world.spec, locs)
    command = [sys.executable, "-m", "services.cli", "sync", "events"]
    cli = subprocess.run(
        [*command, "--topology", str(world.write_topology())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 1, cli.stderr[-2000:]
    assert "CheckpointMismatch" in cli.stderr
    assert "the checkpoint was lost" in cli.stderr
    assert logs() == before  # nothing written to either table

    shutil.rmtree(checkpoint, ignore_errors=True)  # whatever the refused runs left
    shutil.move(aside, checkpoint)
    quarantine_aside = tmp_path / "quarantine-aside"
    shutil.move(locs.quarantine.path, quarantine_aside)  # now a table is lost
    with pytest.raises(CheckpointMismatch, match="quarantine table has no batch"):
        sync_events.run_available_now(spark, world.spec, locs)
    shutil.rmtree(locs.quarantine.path, ignore_errors=True)
    shutil.move(quarantine_aside, locs.quarantine.path)

    assert sync_events.run_available_now(spark, world.spec, locs).landing_lines == 40
    warehouse = read_through_log(locs.events.path, "event_id")
    assert sorted(warehouse) == sorted(str(r["event_id"]) for r in landed)
