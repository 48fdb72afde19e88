"""The supervisor with real processes: a process that keeps dying is restarted with back-off
and its restarts and exit code are recorded in state.json; a steady one is left alone; a
process that never says it is ready fails the start; stopping ends every process."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from services.local.plan import LocalPlan, ProcessSpec
from services.local.supervisor import (
    RunState,
    StartError,
    Supervisor,
    hold_path,
    is_running,
    run_processes,
    state_path,
)

pytestmark = pytest.mark.integration


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


READY = "print('listening on 127.0.0.1:1', flush=True); import time; "


def wait_for(condition, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s}s")


def supervisor_for(run_dir: Path, *specs: ProcessSpec) -> Supervisor:
    """A supervisor over `specs` alone (no namespaces, no files), with a fresh run id."""
    plan = LocalPlan(run_dir, specs, {}, "127.0.0.1:1", None)
    return Supervisor(plan, uuid.uuid4().hex, say=lambda _line: None)


def test_a_dying_process_is_restarted_with_back_off_and_counted(tmp_path: Path) -> None:
    supervisor = supervisor_for(
        tmp_path,
        ProcessSpec("steady", "z", python(READY + "time.sleep(120)")),
        ProcessSpec("flaky", "z", python(READY + "time.sleep(0.3); raise SystemExit(3)")),
    )
    run_id = supervisor.state.run_id
    supervisor.start_all()
    watcher = threading.Thread(target=supervisor.watch)
    watcher.start()
    try:
        path = state_path(tmp_path)
        wait_for(lambda: RunState.load(path).process("flaky").restarts >= 2)
        state = RunState.load(path)
        assert state.phase == "ready"
        assert state.process("flaky").last_exit == 3
        assert state.process("steady").restarts == 0
        steady_pid = state.process("steady").pid
        assert is_running(steady_pid)
    finally:
        supervisor.stop()
        watcher.join(timeout=10)
        supervisor.shutdown()
    assert RunState.load(state_path(tmp_path)).phase == "stopped"
    assert not is_running(steady_pid)
    assert run_processes(run_id) == []


def test_a_process_that_never_gets_ready_fails_the_start(tmp_path: Path) -> None:
    supervisor = supervisor_for(
        tmp_path,
        ProcessSpec("mute", "z", python("import time; time.sleep(60)"), ready_timeout_s=1.0),
    )
    with pytest.raises(StartError, match="mute did not start"):
        supervisor.start_all()
    supervisor.shutdown()
    assert run_processes(supervisor.state.run_id) == []


def test_a_held_process_stays_down_until_released_and_stops_with_its_own_signal(
    tmp_path: Path,
) -> None:
    """The hold file keeps a process that exits from being restarted (the drills hold the
    database down this way); removing it restarts the process at once. `stop_signal` is
    what `down` sends it: this one exits cleanly only on SIGINT."""
    on_int = (
        "import signal, sys, time; "
        "signal.signal(signal.SIGINT, lambda *_: sys.exit(0)); "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('listening on 127.0.0.1:1', flush=True); time.sleep(120)"
    )
    supervisor = supervisor_for(
        tmp_path,
        ProcessSpec("db", "z", python(on_int), stop_signal=signal.SIGINT),
    )
    supervisor.start_all()
    watcher = threading.Thread(target=supervisor.watch)
    watcher.start()
    path = state_path(tmp_path)
    try:
        first = RunState.load(path).process("db").pid
        hold = hold_path(tmp_path, "db")
        hold.parent.mkdir()
        hold.touch()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: RunState.load(path).process("db").status == "held")
        time.sleep(2.5)  # longer than the 1 s back-off: still held, nothing started
        held = RunState.load(path).process("db")
        assert held.status == "held"
        assert held.pid == first
        hold.unlink()
        wait_for(lambda: RunState.load(path).process("db").status == "running")
        second = RunState.load(path).process("db")
        assert second.pid != first
        assert second.restarts == 1
        assert second.stop_signal == signal.SIGINT
    finally:
        supervisor.stop()
        watcher.join(timeout=10)
        started = time.monotonic()
        supervisor.shutdown()
    # SIGTERM is ignored by this process: a quick stop means it got SIGINT, not the
    # 45 s grace and the SIGKILL sweep.
    assert time.monotonic() - started < 10
    assert not is_running(second.pid)


AUTOGROUP = Path(f"/proc/{os.getpid()}/autogroup").exists()


@pytest.mark.skipif(not AUTOGROUP, reason="the kernel runs without autogroup scheduling")
def test_a_niced_process_gets_a_niced_session_and_a_plain_one_does_not(tmp_path: Path) -> None:
    """Each child runs in a session of its own; under autogroup scheduling its nice value
    only counts inside that session, so the supervisor nices the session as well."""
    child = READY + "import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
    child += "'import time; time.sleep(120)']); time.sleep(120)"
    supervisor = supervisor_for(
        tmp_path,
        ProcessSpec("compute", "z", python(child), nice=10),
        ProcessSpec("door", "z", python(READY + "time.sleep(120)")),
    )
    run_id = supervisor.state.run_id
    supervisor.start_all()
    try:
        state = RunState.load(state_path(tmp_path))
        compute, door = state.process("compute").pid, state.process("door").pid
        assert Path(f"/proc/{compute}/autogroup").read_text().split()[-1] == "10"
        assert Path(f"/proc/{door}/autogroup").read_text().split()[-1] == "0"
        assert os.getpriority(os.PRIO_PROCESS, compute) == 10
        wait_for(lambda: len(run_processes(run_id)) >= 3)
        grandchild = next(p for p in run_processes(run_id) if p not in (compute, door))
        # the compute process's own children share its niced session
        same = Path(f"/proc/{grandchild}/autogroup").read_text()
        assert same == Path(f"/proc/{compute}/autogroup").read_text()
    finally:
        supervisor.stop()
        supervisor.shutdown()
