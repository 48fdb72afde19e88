"""Run the local platform's processes and keep them running, like a kubelet with
`restartPolicy: Always`.

`isthmus up` writes the plan (plan.json) and starts this supervisor as its own daemon
(`isthmus supervise`, a session of its own, log in `RUN_DIR/logs/supervisor.log`). The
supervisor creates the zone namespaces, starts every process in order and waits for each to
say it is ready, then watches them: a process that exits is started again after a back-off
(1 s doubling to 30 s; the streak resets once a process has stayed up for a minute), and
`RUN_DIR/state.json` always says what runs where, its status and its restart count
(`isthmus status` reads it). A file `RUN_DIR/hold/NAME` holds a process down: once it exits
it is not restarted until the file is removed (like scaling a workload to zero; the drills
use it to keep the database stopped). On SIGTERM (`isthmus down`) it stops the processes in reverse
order with SIGTERM (each drains and shuts down what it started), ends anything still carrying
the run id -- only processes this run started -- with SIGKILL, removes the namespaces, and
exits.

Every process runs in its own session with its output appended to `RUN_DIR/logs/NAME.log`,
and carries `ISTHMUS_RUN=<run id>` in its environment, which Ray's daemons and workers
inherit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from services.local import database, netns
from services.local.plan import LocalPlan, ProcessSpec

ENV_RUN = "ISTHMUS_RUN"
POLL_S = 0.25
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
STABLE_AFTER_S = 60.0  # up this long: the next crash starts a fresh back-off streak
MARKER_ANYWHERE = frozenset({"ray-head", "ray-worker", "database"})  # their logs prefix lines


class StartError(Exception):
    """A process did not come up; its log tail says why."""


@dataclass
class Started:
    """One supervised process as the state file records it."""

    name: str
    zone: str | None
    pid: int
    log: str
    address: str
    kind: str = "service"
    status: str = "running"  # starting | running | backoff | held | stopped
    restarts: int = 0
    last_exit: int | None = None
    started_unix_s: float = 0.0
    stop_signal: int = signal.SIGTERM


@dataclass
class RunState:
    run_id: str
    run_dir: str
    gateway: str
    processes: list[Started]
    namespaces: list[str]
    isolated: bool
    host_link: str = ""
    supervisor_pid: int = 0
    phase: str = "starting"  # starting | ready | failed | stopping | stopped
    error: str = ""
    updated_unix_s: float = field(default_factory=time.time)

    def save(self, path: Path) -> None:
        self.updated_unix_s = time.time()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RunState:
        raw = json.loads(path.read_text())
        raw["processes"] = [Started(**p) for p in raw["processes"]]
        return cls(**raw)

    def process(self, name: str) -> Started:
        for started in self.processes:
            if started.name == name:
                return started
        known = ", ".join(p.name for p in self.processes)
        raise KeyError(f"no process {name!r} in this run; known: {known}")


def state_path(run_dir: Path) -> Path:
    return run_dir / "state.json"


def hold_path(run_dir: Path, name: str) -> Path:
    """While this file exists, `name` is not restarted after it exits."""
    return run_dir / "hold" / name


def restart_delay_s(streak: int) -> float:
    """Back-off before the `streak`-th restart in a row (1-based): 1, 2, 4, ... 30 s."""
    return float(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, streak - 1)))


@dataclass
class _Child:
    spec: ProcessSpec
    record: Started
    proc: subprocess.Popen[bytes] | None = None
    log_offset: int = 0
    deadline: float = 0.0
    streak: int = 0
    due: float = 0.0


class Supervisor:
    """Starts the plan's processes and restarts those that exit, until stopped."""

    def __init__(self, plan: LocalPlan, run_id: str, say: object = print) -> None:
        self.plan = plan
        self.path = state_path(plan.run_dir)
        self.env = {**os.environ, ENV_RUN: run_id, "PYTHONUNBUFFERED": "1"}
        self.say = say if callable(say) else print
        self.children: list[_Child] = []
        self.stopping = threading.Event()
        net = plan.net
        self.state = RunState(
            run_id,
            str(plan.run_dir),
            plan.gateway_address,
            [],
            list(net.namespaces) if net else [],
            net is not None,
            net.host_link if net else "",
            supervisor_pid=os.getpid(),
        )

    # ---- start -------------------------------------------------------------------------
    def start_all(self) -> None:
        """Namespaces, config files, then every process in order, each ready before the next."""
        run_dir = self.plan.run_dir
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        (run_dir / "secrets").mkdir(mode=0o700, parents=True, exist_ok=True)
        for path, text in self.plan.files.items():
            path.write_text(text)
        if self.plan.net is not None:
            netns.apply(self.plan.net)
        if self.plan.postgres is not None:
            self.say(f"  preparing PostgreSQL in {self.plan.postgres.root}")
            database.prepare(self.plan.postgres)
        self.state.save(self.path)
        for spec in self.plan.processes:
            if self.stopping.is_set():
                raise StartError("stopped while starting")
            record = Started(
                spec.name,
                spec.zone,
                0,
                str(run_dir / "logs" / f"{spec.name}.log"),
                "",
                spec.kind,
                "starting",
                stop_signal=spec.stop_signal,
            )
            child = _Child(spec, record)
            self.children.append(child)
            self.state.processes.append(record)
            self._spawn(child)
            while child.record.status == "starting":
                if self.stopping.wait(POLL_S):
                    raise StartError("stopped while starting")
                if not self._check_ready(child):
                    raise StartError(
                        f"{spec.name} did not start (see {record.log}):\n" + _tail(Path(record.log))
                    )
            self.state.save(self.path)
            self.say(f"  {spec.name:<22} {spec.zone or 'gateway':<10} {record.address}")
        self.state.phase = "ready"
        self.state.save(self.path)

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        namespace = None if self.plan.net is None else self.plan.net.namespace_of(spec.zone)
        log_path = Path(child.record.log)
        with log_path.open("ab") as log:
            child.log_offset = log.tell()
            child.proc = subprocess.Popen(  # noqa: S603 (our own CLI and ray, fixed arguments)
                [*netns.exec_prefix(namespace), *_nice(spec.nice), *spec.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**self.env, **dict(spec.env)},
                start_new_session=True,
            )
        child.record.pid = child.proc.pid
        _autogroup_nice(child.proc.pid, spec.nice)
        child.record.status = "starting"
        child.record.started_unix_s = time.time()
        child.deadline = time.monotonic() + spec.ready_timeout_s

    def _check_ready(self, child: _Child) -> bool:
        """Marks the child running once its log says so; False when it died or timed out."""
        assert child.proc is not None
        marker = child.spec.ready_marker
        with Path(child.record.log).open("rb") as log:
            log.seek(child.log_offset)
            for raw in log.read().decode(errors="replace").splitlines():
                if marker in raw and (child.spec.kind in MARKER_ANYWHERE or raw.startswith(marker)):
                    child.record.status = "running"
                    if raw.startswith(marker):
                        child.record.address = raw[len(marker) :].strip()
                    return True
        if child.proc.poll() is not None:
            return False
        if time.monotonic() > child.deadline:
            _kill_group(child.proc.pid)
            child.proc.wait()
            return False
        return True

    # ---- watch -------------------------------------------------------------------------
    def watch(self) -> None:
        """Restart what exits, with back-off, until stop() is called."""
        while not self.stopping.wait(POLL_S):
            changed = False
            for child in self.children:
                changed |= self._tend(child, time.monotonic())
            if changed:
                self.state.save(self.path)

    def _tend(self, child: _Child, now: float) -> bool:
        record, proc = child.record, child.proc
        held = hold_path(self.plan.run_dir, record.name).exists()
        if record.status in ("backoff", "held"):
            if held != (record.status == "held"):
                record.status = "held" if held else "backoff"
                self.say(f"{record.name} {'held down' if held else 'released'}")
                return True
            if held or now < child.due:
                return False
            self._spawn(child)
            self.say(f"restarting {record.name} (restart {record.restarts})")
            return True
        assert proc is not None
        if record.status == "starting":
            if self._check_ready(child):
                return record.status == "running"
        elif proc.poll() is None:
            return False
        code = proc.poll()
        record.last_exit = code if code is not None else -signal.SIGKILL
        up_for = time.time() - record.started_unix_s
        child.streak = 1 if up_for >= STABLE_AFTER_S else child.streak + 1
        delay = restart_delay_s(child.streak)
        child.due = now + delay
        record.restarts += 1
        record.status = "backoff"
        self.say(f"{record.name} exited ({record.last_exit}); restart in {delay:.0f}s")
        return True

    # ---- stop --------------------------------------------------------------------------
    def stop(self) -> None:
        self.stopping.set()

    def shutdown(self) -> None:
        self.state.phase = "stopping"
        self.state.save(self.path)
        stop_all(self.state)
        for child in self.children:
            child.record.status = "stopped"
        self.state.phase = "stopped"
        self.state.save(self.path)


def supervise(plan: LocalPlan, run_id: str) -> int:
    """The daemon's main: start, watch until SIGTERM/SIGINT, stop everything."""
    supervisor = Supervisor(plan, run_id, say=lambda line: print(line, flush=True))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: supervisor.stop())
    try:
        supervisor.start_all()
        print("ready", flush=True)
        supervisor.watch()
    except BaseException as exc:
        supervisor.state.phase = "failed"
        supervisor.state.error = str(exc)
        supervisor.state.save(supervisor.path)
        print(f"failed: {exc}", flush=True)
        stop_all(supervisor.state)
        return 1
    supervisor.shutdown()
    return 0


def run_processes(run_id: str) -> list[int]:
    """PIDs of every live process carrying this run's id (ours, and Ray's under ours)."""
    marker = f"{ENV_RUN}={run_id}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            carries = marker in (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if carries and is_running(int(entry.name)):
            found.append(int(entry.name))
    return found


def stop_all(state: RunState, grace_s: float = 45.0) -> list[int]:
    """Stop everything the run started; returns PIDs that had to be killed."""
    for started in reversed(state.processes):
        _signal(started.pid, started.stop_signal)  # the process shuts down what it started
        deadline = time.monotonic() + grace_s
        while is_running(started.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    killed = run_processes(state.run_id)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while run_processes(state.run_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    if state.isolated:
        netns.run_ip(["ip", "link", "del", state.host_link], check=False)
        for ns in reversed(state.namespaces):
            netns.run_ip(["ip", "netns", "del", ns], check=False)
    return killed


def _signal(pid: int, signum: int) -> None:
    if pid > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _nice(level: int) -> tuple[str, ...]:
    """`nice` execs the command, so the supervised PID stays the process itself."""
    return ("nice", "-n", str(level)) if level else ()


def _autogroup_nice(pid: int, level: int) -> None:
    """Give the child's session the same niceness. With the kernel's autogroup scheduling on
    (Debian's default), CPU is shared between sessions first and a process's nice value only
    counts inside its own session; each child runs in a session of its own, so without this a
    nice-10 child still got as much CPU as the gateway (measured: 161 vs 165 ticks on one core;
    with the session niced too, 43 vs 284). No autogroup file: nice alone already applies."""
    if level:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(str(level))


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def is_running(pid: int) -> bool:
    """Alive and not a zombie (a child of ours is reaped here first)."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
