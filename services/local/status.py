"""`isthmus status`: every process of the local platform, its zone, restarts and health.

Health comes from where it can be seen: a service that is a gateway cluster is judged by the
gateway itself (GatewayAdminService/GetClusterHealth: its endpoints' states), a ranking service
by its zone's status file (Serve's running replicas), a gateway instance by its own metrics
listener, a Ray node by its process. The table is built by a pure function from those facts.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml

from services.local.supervisor import RunState, Started, is_running


@dataclass(frozen=True)
class Row:
    name: str
    zone: str
    kind: str
    pid: int
    status: str
    restarts: int
    uptime_s: float
    health: str


def rows(state: RunState, health: dict[str, str], now: float) -> list[Row]:
    """One row per supervised process (pure)."""
    out = []
    for p in state.processes:
        alive = p.status == "running"
        out.append(
            Row(
                p.name,
                p.zone or "gateway",
                p.kind,
                p.pid,
                p.status,
                p.restarts,
                now - p.started_unix_s if alive else 0.0,
                health.get(p.name, "up" if alive else "down"),
            )
        )
    return out


def render(state: RunState, table: list[Row]) -> str:
    head = f"run {state.run_id[:8]}  phase {state.phase}  gateway {state.gateway}"
    lines = [
        head,
        f"{'PROCESS':<22} {'ZONE':<9} {'KIND':<10} {'PID':>7} {'STATUS':<8} "
        f"{'RESTARTS':>8} {'UPTIME':>8}  HEALTH",
    ]
    for r in table:
        lines.append(
            f"{r.name:<22} {r.zone:<9} {r.kind:<10} {r.pid:>7} {r.status:<8} {r.restarts:>8} "
            f"{_duration(r.uptime_s):>8}  {r.health}"
        )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def gather_health(state: RunState, run_dir: Path, token: str) -> dict[str, str]:
    """Health per process name, from the gateway, status files and metrics listeners."""
    health: dict[str, str] = {}
    clusters = gateway_cluster_health(state.gateway, token)
    for p in state.processes:
        if p.kind == "gateway":
            health[p.name] = _gateway_health(p, run_dir)
        elif p.kind == "service" and p.name in clusters:
            health[p.name] = clusters[p.name]
        elif p.kind == "service" and (run_dir / f"{p.name}.status.json").exists():
            health[p.name] = _replicas(run_dir / f"{p.name}.status.json")
        elif p.status == "running":
            health[p.name] = "up" if is_running(p.pid) else "down"
    return health


def gateway_cluster_health(gateway: str, token: str) -> dict[str, str]:
    """Cluster name -> "3/3 endpoints healthy" as the gateway sees it ({} if unreachable)."""
    from isthmus.gateway.v1 import gateway_admin_pb2, gateway_admin_pb2_grpc

    try:
        with grpc.insecure_channel(gateway) as channel:
            stub = gateway_admin_pb2_grpc.GatewayAdminServiceStub(channel)
            answer = stub.GetClusterHealth(
                gateway_admin_pb2.GetClusterHealthRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=3,
            )
    except grpc.RpcError:
        return {}
    out = {}
    for cluster in answer.clusters:
        states = [gateway_admin_pb2.EndpointState.Name(e.state) for e in cluster.endpoints]
        healthy = states.count("ENDPOINT_STATE_HEALTHY")
        out[cluster.name] = f"{healthy}/{len(states)} endpoints healthy (gateway's view)"
    return out


def _replicas(path: Path) -> str:
    try:
        status: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return "no status"
    age = time.time() - float(status.get("time_unix_s", 0))
    running = int(status.get("replicas", {}).get("RUNNING", 0))
    stale = f" (status {age:.0f}s old)" if age > 5 else ""
    return f"{running} replica(s) running, {status.get('endpoints', 0)} published{stale}"


def _gateway_health(p: Started, run_dir: Path) -> str:
    if p.status != "running":
        return "down"
    name = "gateway.yaml" if p.name == "gateway" else f"{p.name}.yaml"
    try:
        listen = yaml.safe_load((run_dir / name).read_text())["server"]["telemetry"]
        metrics = listen["prometheus_listen"]
        url = f"http://{metrics['host']}:{metrics['port']}/metrics"
        with urllib.request.urlopen(url, timeout=2) as reply:
            return "serving" if reply.status == 200 else f"metrics HTTP {reply.status}"
    except (OSError, KeyError, TypeError):
        return "not answering"
