"""Start and stop the local platform's processes.

Every process runs in its own session with its output in `RUN_DIR/logs/NAME.log`, and carries
`ISTHMUS_RUN=<run id>` in its environment, which Ray's daemons and workers inherit. `up`
records the run in `RUN_DIR/state.json`; `down` stops the services in reverse order with
SIGTERM (each drains and shuts down what it started), then ends anything still carrying the
run id -- only processes this run started -- with SIGKILL, and removes the namespaces.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from services.local import netns
from services.local.plan import LocalPlan, ProcessSpec

ENV_RUN = "ISTHMUS_RUN"


class StartError(Exception):
    """A process did not come up; its log tail says why."""


@dataclass
class Started:
    name: str
    zone: str | None
    pid: int
    log: str
    address: str


@dataclass
class RunState:
    run_id: str
    run_dir: str
    gateway: str
    processes: list[Started]
    namespaces: list[str]
    isolated: bool
    host_link: str = ""

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RunState:
        raw = json.loads(path.read_text())
        raw["processes"] = [Started(**p) for p in raw["processes"]]
        return cls(**raw)


def state_path(run_dir: Path) -> Path:
    return run_dir / "state.json"


def start_all(plan: LocalPlan, progress: object = print) -> RunState:
    """Write the plan's files, bring the processes up in order, wait for each to serve."""
    say = progress if callable(progress) else print
    run_dir = plan.run_dir
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    (run_dir / "secrets").mkdir(mode=0o700, parents=True, exist_ok=True)
    for path, text in plan.files.items():
        path.write_text(text)
    run_id = uuid.uuid4().hex
    state = RunState(
        run_id,
        str(run_dir),
        plan.gateway_address,
        [],
        list(plan.net.namespaces) if plan.net else [],
        plan.net is not None,
        plan.net.host_link if plan.net else "",
    )
    if plan.net is not None:
        netns.apply(plan.net)
    state.save(state_path(run_dir))
    env = {**os.environ, ENV_RUN: run_id, "PYTHONUNBUFFERED": "1"}
    try:
        for spec in plan.processes:
            namespace = None if plan.net is None else plan.net.namespace_of(spec.zone)
            started = _start(spec, run_dir, env, namespace)
            state.processes.append(started)
            state.save(state_path(run_dir))
            say(f"  {spec.name:<10} {spec.zone or 'gateway':<10} {started.address}")
    except BaseException:
        stop_all(state)
        raise
    return state


def _start(spec: ProcessSpec, run_dir: Path, env: dict[str, str], ns: str | None) -> Started:
    log_path = run_dir / "logs" / f"{spec.name}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(  # noqa: S603 (our own CLI, fixed arguments)
            [*netns.exec_prefix(ns), *spec.argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + spec.ready_timeout_s
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("listening on "):
                return Started(spec.name, spec.zone, proc.pid, str(log_path), line[13:].strip())
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
    proc.kill()
    raise StartError(f"{spec.name} did not start (see {log_path}):\n{tail}")


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
        _signal(started.pid, signal.SIGTERM)  # the service shuts down what it started
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
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def is_running(pid: int) -> bool:
    """Alive and not a zombie (a child of ours is reaped here first)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
