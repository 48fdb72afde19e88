"""Actions on the sync job (the Spark job in the private zone that moves the public landing
log into the private warehouse): they change things.

The local sync reads the landing log as files; in production it reads a bucket across the
link between the clouds. `cut_sync_path` cuts that path for one sync run the way a partition
looks to the job -- files it has already planned to read are gone mid-batch -- by mounting an
empty read-only tmpfs over the landing directory inside the job's own mount namespace (the
zone namespace's `ip netns exec` gives it one; without isolation `unshare --mount` does). The
events service keeps landing events on the real directory meanwhile, and the mount dies with
the job, so nothing outside it is touched and there is nothing to undo.

`switch_off_checkpoint` and `switch_off_completeness` are the sync's protections switched
off, to show what each prevents: with the first every run of the drill starts as a job whose
checkpoint was lost (the sync refuses to run: `checkpoint_guard`); with the second the
check's record of planned-but-unread files is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from chaos import context
from chaos.local.platform import DEFAULT_RUN_DIR, Platform
from ray_jobs.sync.completeness import RECORDS
from ray_jobs.sync.prune import committed_batches, planned_in, source_offset


def switch_off_checkpoint(run_dir: str = DEFAULT_RUN_DIR) -> None:
    """Every sync run of this drill starts without its checkpoints (as a job whose checkpoint
    location was lost or wiped): the checkpoints and the sinks' commit logs are copied aside
    first, and the rollback puts them back, so the platform ends as it was (files written
    meanwhile are orphans no reader sees: they are not in the restored commit logs)."""
    drill = context.current()
    platform = Platform.load(run_dir)
    kept = platform.run_dir / "chaos-kept-checkpoints"
    shutil.rmtree(kept, ignore_errors=True)
    saved = {}
    for index, path in enumerate(_sync_state(platform)):
        copy = kept / str(index)
        if path.exists():
            shutil.copytree(path, copy)
        saved[path] = copy

    def restore() -> None:
        for path, copy in saved.items():
            shutil.rmtree(path, ignore_errors=True)
            if copy.exists():
                shutil.copytree(copy, path)
        shutil.rmtree(kept, ignore_errors=True)
        drill.switched_off.discard("checkpoint")

    drill.undo["protection:checkpoint"] = restore
    drill.switched_off.add("checkpoint")
    drill.event("protection off: checkpoint (each sync run starts without one)")


def _sync_state(platform: Platform) -> list[Path]:
    """What a sync run remembers: its query's checkpoint and both sinks' commit logs."""
    locs = _locations(platform)
    return [
        locs.sync_checkpoint.path,
        locs.events.path / "_spark_metadata",
        locs.quarantine.path / "_spark_metadata",
    ]


def _forget_checkpoints_if_switched_off(platform: Platform) -> None:
    if "checkpoint" in context.current().switched_off:
        locs = _locations(platform)
        for path in (locs.sync_checkpoint.path,):
            shutil.rmtree(path, ignore_errors=True)


def kill_sync_mid_batch(
    kills: int = 3, timeout_s: float = 120.0, run_dir: str = DEFAULT_RUN_DIR
) -> int:
    """Start `isthmus sync events` and SIGKILL it (the driver and its JVM) right after it has
    planned a micro-batch it has not committed, `kills` times, while events keep landing.
    Returns how many kills landed mid-batch."""
    drill = context.current()
    platform = Platform.load(run_dir)
    checkpoint = _sync_checkpoint(platform)
    offsets = checkpoint / "offsets"
    landed = 0
    drill.fault_begins(f"sync job SIGKILLed mid-batch, {kills} times")
    for attempt in range(1, kills + 1):
        _forget_checkpoints_if_switched_off(platform)
        known = _batches(offsets)
        with _sync_run(platform, "sync-killed") as proc:
            planned = _wait_for_a_planned_batch(proc, checkpoint, known, timeout_s)
            if planned is not None:
                landed += 1
                drill.event(f"sync killed after planning batch {planned} (kill {attempt})")
            else:
                drill.event(f"kill {attempt}: the sync ended before planning a batch")
            _kill_group(proc)
    return landed


def cut_sync_path(cuts: int = 2, timeout_s: float = 180.0, run_dir: str = DEFAULT_RUN_DIR) -> int:
    """Start `isthmus sync events` and cut its path to the landing log between planning a
    micro-batch and reading it (the planned files vanish from its view), `cuts` times, while
    events keep landing. The fault window stays open until `run_sync` heals the path.
    Returns how many cut runs failed (the sync must not end as if it had read what it could
    not).

    The sync is frozen (SIGSTOP to its process group, JVM included) the moment its file
    source logs the files of a new batch, the path is cut, and it runs on: so the cut lands
    before Spark lists those files for the read, every time, and the batch's read finds
    none -- the case Spark itself lets pass silently (see ray_jobs/sync/completeness.py)."""
    drill = context.current()
    platform = Platform.load(run_dir)
    landing = _locations(platform).landing.path
    checkpoint = _sync_checkpoint(platform)
    failed = 0
    drill.fault_begins(f"the sync's path to the landing log cut mid-batch, {cuts} times")
    for attempt in range(1, cuts + 1):
        _forget_checkpoints_if_switched_off(platform)
        with _sync_run(platform, "sync-partition", own_mounts=platform.net is None) as proc:
            planned = _freeze_at_planning(proc, checkpoint, timeout_s)
            if planned is None:
                drill.event(f"cut {attempt}: the sync ended before planning a batch")
                continue
            try:
                _cover(proc.pid, landing)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGCONT)
            drill.event(f"path cut as the sync planned source log entry {planned} (cut {attempt})")
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                code = proc.wait()
                drill.event(f"cut {attempt}: the sync hung on the cut path; killed")
        committed = reached(checkpoint, planned)
        if code != 0:
            failed += 1
        drill.event(
            f"cut {attempt}: the sync exited {code}; the batch of entry {planned} "
            + ("committed" if committed else "not committed")
        )
        _forget_unread_if_switched_off(platform)
    return failed


def switch_off_completeness(run_dir: str = DEFAULT_RUN_DIR) -> None:
    """The sync's completeness check as if it were not there: after each cut run the drill
    drops what the check recorded (`_isthmus_unread/`, the planned files a committed batch
    did not read), so the next run has nothing to land again -- a sync without the check
    records nothing. The records are only dropped; nothing else is touched."""
    drill = context.current()
    Platform.load(run_dir)  # the platform must be there
    drill.undo["protection:completeness"] = lambda: drill.switched_off.discard("completeness")
    drill.switched_off.add("completeness")
    drill.event("protection off: the sync's completeness check (its records dropped)")


def _forget_unread_if_switched_off(platform: Platform) -> None:
    if "completeness" in context.current().switched_off:
        locs = _locations(platform)
        for path in (locs.sync_checkpoint.path,):
            shutil.rmtree(path / RECORDS, ignore_errors=True)


def run_sync(run_dir: str = DEFAULT_RUN_DIR) -> dict[str, Any]:
    """Run `isthmus sync events` to completion (the sync catching up, the path healed); marks
    the moment, so reconciliation judges the events acknowledged before it."""
    from services.local.demo import run_sync as run_job

    drill = context.current()
    drill.sync_cutoff = drill.now()
    platform = Platform.load(run_dir)
    _forget_checkpoints_if_switched_off(platform)
    try:
        report = run_job(platform.state, platform.run_dir, "events")
    except RuntimeError as exc:
        # The sync failing (or refusing to start) is the platform failing the drill, not the
        # drill failing: the events probe then finds what did not land; the why goes here.
        drill.fault_ends(f"the catch-up sync failed: {_sync_error(platform) or exc}")
        return {"failed": str(exc)}
    drill.fault_ends(f"sync caught up ({report.get('landing_lines', '?')} lines)")
    return report


def _sync_error(platform: Platform) -> str | None:
    """The error line `isthmus sync events` printed last (`isthmus sync events: Type: ...`)."""
    path = platform.run_dir / "logs" / "sync-events.log"
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.startswith("isthmus sync")]
    return lines[-1] if lines else None


@contextlib.contextmanager
def _sync_run(
    platform: Platform, name: str, own_mounts: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """A sync run of the drill: its output appended to `logs/NAME.log`, and its process
    group SIGKILLed when the block ends, however it ends -- also by the drill's rollback,
    should the drill be interrupted first (a sync left stopped or running would outlive it)."""
    drill = context.current()
    with _log(platform, name) as log:
        proc = _start_sync(platform, log, own_mounts)
        drill.undo[f"sync-run:{proc.pid}"] = lambda: _kill_group(proc)
        try:
            yield proc
        finally:
            drill.undo_now(f"sync-run:{proc.pid}")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the sync's process group (driver and JVM; a stopped one too) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _start_sync(
    platform: Platform, log: IO[bytes], own_mounts: bool = False
) -> subprocess.Popen[bytes]:
    """The sync as the private zone runs it, in a process group of its own (its JVM too)."""
    from services.local.demo import sync_command

    command = sync_command(platform.state, platform.run_dir, "events")
    if own_mounts:  # `ip netns exec` gives a mount namespace; on the host, ask for one
        command = [
            shutil.which("unshare") or "/usr/bin/unshare",
            "--mount",
            "--propagation",
            "private",
            *command,
        ]
    return subprocess.Popen(  # noqa: S603 (our own CLI)
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_for_a_planned_batch(
    proc: subprocess.Popen[bytes], checkpoint: Path, known: set[int], timeout_s: float
) -> int | None:
    """The id of the first batch beyond `known` that the running sync plans with landing
    files in it (the events query also plans batches without files, to move its watermark);
    None when it ended (or the time ran out) first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        for batch in sorted(_batches(checkpoint / "offsets") - known):
            if planned_in(checkpoint, batch):
                return batch
            known.add(batch)  # a batch without files: wait for the next one
        time.sleep(0.05)
    return None


def _freeze_at_planning(
    proc: subprocess.Popen[bytes], checkpoint: Path, timeout_s: float
) -> int | None:
    """Stop the running sync (SIGSTOP to its process group) as soon as its file source logs
    a new entry (`sources/0/<id>`: the files of the next batch, written before the batch's
    offsets and before its read lists them); returns the entry's id, the sync stopped. None
    when it ended (or the time ran out) first. Polls every millisecond: the read follows
    the log entry within milliseconds."""
    log = checkpoint / "sources" / "0"
    known = _log_ids(log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        new = _log_ids(log) - known
        if new:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGSTOP)
            return min(new)
        time.sleep(0.001)
    return None


def reached(checkpoint: Path, entry: int) -> bool:
    """Whether a committed batch of the query at `checkpoint` read up to source log entry
    `entry` (its files, or what was left of them, are then behind the query for good)."""
    offsets = (source_offset(checkpoint, batch) for batch in committed_batches(checkpoint))
    return any(offset is not None and offset >= entry for offset in offsets)


def _log_ids(directory: Path) -> set[int]:
    """Ids of a Spark metadata log's entries (`7`, or `9.compact` after compaction)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return set()
    return {int(n.split(".")[0]) for n in names if n.split(".")[0].isdigit()}


def _cover(pid: int, directory: Path) -> None:
    """An empty read-only tmpfs over `directory`, in `pid`'s mount namespace only."""
    subprocess.run(  # noqa: S603 (fixed tools, the sync's own namespace)
        [
            shutil.which("nsenter") or "/usr/bin/nsenter",
            f"--target={pid}",
            "--mount",
            "--",
            shutil.which("mount") or "/usr/bin/mount",
            "-t",
            "tmpfs",
            "-o",
            "ro,size=4k",
            "isthmus-cut",
            str(directory),
        ],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def _log(platform: Platform, name: str) -> Any:
    with (platform.run_dir / "logs" / f"{name}.log").open("ab") as log:
        yield log


def _locations(platform: Platform) -> Any:
    from ray_jobs.sync.config import Locations

    return Locations.from_spec(platform.topology.data)


def _sync_checkpoint(platform: Platform) -> Path:
    path: Path = _locations(platform).sync_checkpoint.path
    return path


def _batches(directory: Path) -> set[int]:
    if not directory.is_dir():
        return set()
    return {int(p.name) for p in directory.iterdir() if p.name.isdigit()}
