"""`isthmus sync events --continuous --prune-landing`: one process keeps syncing (and pruning
the landing files it committed) while files land, lets an erase in at a run's boundary (the
erase waits for it instead of failing SyncBusy), and stops on SIGTERM with exit 0 and no half
batch -- a restart catches up, and every event is in the warehouse exactly once, none of the
erased person's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ray_jobs.sync import erasure
from ray_jobs.sync.private_source import read_private
from ray_jobs.sync.prune import committed_batches
from tests.system.spark_world import land_events, make_world
from tests.system.test_sync_kill import read_through_log

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_continuous_sync_lets_an_erase_in_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    world = make_world(tmp_path, max_files_per_trigger=2)
    topology = world.write_topology()
    victim = world.people[3]
    landed = land_events(world, 200, seed=1, prefix="c0-")
    out, err = tmp_path / "sync.out", tmp_path / "sync.err"
    command = [sys.executable, "-m", "services.cli", "sync", "events", "--topology", str(topology)]
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [*command, "--continuous", "1", "--prune-landing"],
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:

        def runs() -> int:
            return sum(1 for line in out.read_text().splitlines() if line.startswith("{"))

        wait_for(lambda: runs() >= 1, "the first run")
        for i in range(1, 5):  # files keep landing between and during runs
            landed += land_events(world, 50, seed=10 + i, prefix=f"c{i}-")
            time.sleep(0.3)
        wait_for(lambda: runs() >= 3, "more runs of the same process")
        synced_before_erase = read_through_log(world.locs.events.path, "pseudonymous_user_id")
        assert victim.pseudonym in synced_before_erase

        world.store.erase(victim.unified_id, "user request", "test")
        report = erasure.erase(world.locs, read_private(world.config).erased, wait_s=120)
        assert report.rows_removed >= synced_before_erase.count(victim.pseudonym)
        assert proc.poll() is None  # the sync did not have to stop for it

        landed += land_events(world, 100, seed=99, prefix="late-")  # the victim's too
        after_erase = runs()
        wait_for(lambda: runs() >= after_erase + 2, "runs after the erase")
        batches = len(committed_batches(world.locs.sync_checkpoint.path))
        landed += land_events(world, 100, seed=100, prefix="last-")
        time.sleep(1.5)  # SIGTERM whatever it is doing: maybe mid-batch, maybe between runs
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 0, err.read_text()[-3000:]
    assert batches >= 3

    # A restart (one run over what has landed) catches up after the stop.
    final = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert final.returncode == 0, final.stderr[-3000:]
    json.loads(final.stdout.strip().splitlines()[-1])
    # Files went from the landing log as their batches committed, the sync running on.
    reports = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    assert sum(r["pruned_files"] for r in reports) >= 5

    warehouse = read_through_log(world.locs.events.path, "event_id")
    assert [e for e, n in Counter(warehouse).items() if n > 1] == []
    expected = {str(e["event_id"]) for e in landed if e["pseudonymous_user_id"] != victim.pseudonym}
    assert set(warehouse) == expected
    assert victim.pseudonym not in read_through_log(world.locs.events.path, "pseudonymous_user_id")
