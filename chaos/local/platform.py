"""What a drill can see of the platform `isthmus up` started: its state file, plan, runtime
topology, processes (by kind and zone), Ray nodes and their replica processes, and the
namespaces' links. Read-only helpers shared by actions.py and probes.py.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from services.local.database import PostgresLayout
from services.local.netns import Link, NetPlan
from services.local.plan import plan_from_json
from services.local.supervisor import RunState, Started, is_running, state_path
from services.topology import Topology, parse_topology

DEFAULT_RUN_DIR = "var/run"


@dataclass(frozen=True)
class Platform:
    """A running local platform, as its files describe it."""

    run_dir: Path
    state: RunState
    topology: Topology
    net: NetPlan | None
    postgres: PostgresLayout | None = None  # the private zone's server, when it runs one

    @classmethod
    def load(cls, run_dir: str | Path = DEFAULT_RUN_DIR) -> Platform:
        root = Path(run_dir).resolve()
        path = state_path(root)
        if not path.exists():
            raise RuntimeError(f"the platform is not up (no {path}); run `isthmus up` first")
        state = RunState.load(path)
        topology = parse_topology((root / "topology.yaml").read_text(), str(root))
        plan_file = root / "plan.json"
        plan = plan_from_json(plan_file.read_text()) if plan_file.exists() else None
        net = plan.net if plan is not None else None
        return cls(root, state, topology, net, plan.postgres if plan is not None else None)

    def processes(self, kind: str | None = None, zone: str | None = None) -> list[Started]:
        return [
            p
            for p in self.state.processes
            if (kind is None or p.kind == kind) and (zone is None or p.zone == zone)
        ]

    def zone_link(self, zone: str) -> Link:
        """The veth between the gateway's namespace and `zone`'s."""
        if self.net is None:
            raise RuntimeError("zones are not in network namespaces (`isthmus up --isolate`)")
        far = self.net.zone_ns[zone]
        return next(link for link in self.net.links if link.far_ns == far)


def count_for(percent: float, total: int) -> int:
    """How many of `total` a `percent` fault takes: rounded up, at least one, at most all."""
    if total <= 0:
        return 0
    return min(total, max(1, math.ceil(total * percent / 100 - 1e-9)))


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(x) for x in path.read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in children(stack.pop()):
            out.append(child)
            stack.append(child)
    return out


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def replica_pids(pid: int) -> list[int]:
    """Serve ranking replicas among the descendants of a Ray node's `ray start` process."""
    return [p for p in descendants(pid) if cmdline(p).startswith("ray::ServeReplica:")]


def raylet_pid(node_pid: int) -> int | None:
    for child in children(node_pid):
        if "/raylet/raylet" in cmdline(child):
            return child
    return None


def alive(pids: list[int]) -> list[int]:
    return [p for p in pids if is_running(p)]


def ip(
    *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("ip") or "/usr/sbin/ip"
    return subprocess.run(  # noqa: S603 (our own commands)
        [tool, *args], capture_output=True, text=True, check=check, input=stdin
    )


def link_is_up(namespace: str | None, interface: str) -> bool:
    where = [] if namespace is None else ["-n", namespace]
    result = ip(*where, "-o", "link", "show", interface, check=False)
    if result.returncode != 0 or "<" not in result.stdout:
        return False
    flags = result.stdout.split("<", 1)[1].split(">", 1)[0].split(",")
    return "UP" in flags


def gateway_config_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("gateway*.yaml"))


def read_yaml(path: Path) -> dict[str, object]:
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise RuntimeError(f"{path}: not a mapping")
    return doc


def pid_exists(pid: int) -> bool:
    return pid > 0 and os.path.exists(f"/proc/{pid}")


def in_namespace(
    namespace: str, *argv: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a tool (by name, from PATH) inside one of our namespaces."""
    tool = shutil.which(argv[0]) or argv[0]
    return ip("netns", "exec", namespace, tool, *argv[1:], check=check, stdin=stdin)
