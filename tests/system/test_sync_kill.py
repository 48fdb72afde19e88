"""kill -9 of `isthmus sync events` at random points, at least 10 times, while new landing
files (with replayed event ids and malformed lines) keep arriving; then one clean run.
Every good event_id is in the warehouse exactly once, every bad line in the quarantine
exactly once. The warehouse is read through the sink's metadata log: a killed batch leaves
part files that no log entry names, and globbing would count them."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from ray_jobs.sync import sinklog
from tests.support.events import records
from tests.system.spark_world import World, make_world

ROOT = Path(__file__).resolve().parents[2]
KILLS = 10
SEED = 6


class Appender(threading.Thread):
    """Lands a file every 0.3-1.2 s: new events, sometimes replays, sometimes bad lines."""

    def __init__(self, world: World, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.world, self.rng = world, rng
        self.good: list[str] = []
        self.bad: list[str] = []
        self.replays = 0
        self.stop = threading.Event()

    def run(self) -> None:
        users = [p.pseudonym for p in self.world.people]
        n = 0
        while not self.stop.is_set():
            n += 1
            batch = records(40, users=users, seed=n, prefix=f"k{n}-")
            self.good += [str(r["event_id"]) for r in batch]
            if self.good and self.rng.random() < 0.3:
                replayed = self.rng.sample(self.good, 10)
                batch += [{**batch[0], "event_id": e} for e in replayed]
                self.replays += len(replayed)
            if self.rng.random() < 0.2:
                bad = f"bad id {n}"
                batch.append({**batch[0], "event_id": bad})
                self.bad.append(bad)
            self.world.landing.append(batch)
            self.stop.wait(self.rng.uniform(0.3, 1.2))


def sync_command(topology: Path) -> list[str]:
    return [sys.executable, "-m", "services.cli", "sync", "events", "--topology", str(topology)]


def offsets(world: World) -> int:
    directory = world.locs.sync_checkpoint.path / "offsets"
    return sum(1 for p in directory.iterdir() if p.name.isdigit()) if directory.is_dir() else 0


def run_and_kill(world: World, topology: Path, rng: random.Random, kind: str) -> bool:
    """Start a sync and SIGKILL it: at a random time ("blind": during JVM start-up, query
    start, the recovery batch or a later one), or a random moment after it planned a new
    batch ("mid"). False if it finished first."""
    before = offsets(world)
    proc = subprocess.Popen(
        sync_command(topology), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        if kind == "blind":
            deadline = time.monotonic() + rng.uniform(5.0, 40.0)
        else:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and offsets(world) == before and proc.poll() is None:
                time.sleep(0.05)
            deadline = time.monotonic() + rng.uniform(0.0, 2.5)
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        if proc.poll() is not None:
            return False
        proc.kill()
        return True
    finally:
        proc.wait(30)


def read_through_log(sink: Path, column: str) -> list[str]:
    return [
        value
        for path in sinklog.live_files(sink)
        for value in pq.ParquetFile(path).read(columns=[column]).column(column).to_pylist()
    ]


def test_sync_survives_repeated_sigkill_exactly_once(tmp_path: Path) -> None:
    world = make_world(tmp_path, max_files_per_trigger=2)
    topology = world.write_topology()
    rng = random.Random(SEED)
    appender = Appender(world, random.Random(SEED + 1))
    appender.start()
    kills = attempts = 0
    try:
        while kills < KILLS:
            attempts += 1
            assert attempts < 3 * KILLS, "the sync kept finishing before it could be killed"
            kills += run_and_kill(world, topology, rng, "blind" if attempts % 3 == 0 else "mid")
    finally:
        appender.stop.set()
        appender.join()

    # Catch up in large batches (the file source allows changing this between restarts).
    world.spec = world.spec.model_copy(update={"max_files_per_trigger": 1000})
    topology = world.write_topology()
    final = subprocess.run(
        sync_command(topology), cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert final.returncode == 0, final.stderr[-3000:]
    report = json.loads(final.stdout.strip().splitlines()[-1])

    warehouse = read_through_log(world.locs.events.path, "event_id")
    duplicates = [e for e, n in Counter(warehouse).items() if n > 1]
    assert duplicates == []
    assert set(warehouse) == set(appender.good)
    assert len(warehouse) == len(appender.good)
    quarantined = read_through_log(world.locs.quarantine.path, "line")
    assert sorted(json.loads(line)["event_id"] for line in quarantined) == sorted(appender.bad)
    assert report["quarantine_by_reason"] == {
        "event_id: not 1-128 characters of [A-Za-z0-9._:-]": len(appender.bad)
    }
    assert appender.replays > 0
    on_disk = set(world.locs.events.path.rglob("part-*.parquet"))
    orphans = on_disk - set(sinklog.live_files(world.locs.events.path))
    print(f"kills={kills} attempts={attempts} events={len(warehouse)} orphans={len(orphans)}")

    # `isthmus sync audit` (what the Kubernetes sync drills run as a Job) sees the same.
    audit = subprocess.run(
        [*sync_command(topology)[:4], "audit", "--topology", str(topology)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr[-2000:]
    verdict = json.loads(audit.stdout.strip().splitlines()[-1])
    assert verdict["exactly_once"] is True
    assert (verdict["events"], verdict["extra_copies"]) == (len(appender.good), 0)
    assert verdict["debris_files"] == len(orphans)
