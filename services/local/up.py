"""`isthmus up` and `isthmus down`: the whole hybrid cloud on one machine.

`up` builds the plan, hands it to a supervisor daemon (supervisor.py) that starts and keeps
every process running, and returns once the gateway answers Rank from a model; `down` asks
the supervisor to stop everything and then makes sure nothing of the run is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc

from services.core.server import free_port
from services.gateway.auth import issue_token
from services.local import database, netns
from services.local.database import PostgresLayout
from services.local.plan import build, plan_to_json, public_zones
from services.local.supervisor import (
    ENV_RUN,
    RunState,
    StartError,
    is_running,
    run_processes,
    state_path,
    stop_all,
)

__all__ = ["StartError", "down", "up"]
from services.core.secret_ref import SecretRef
from services.models.registry import ModelRegistry
from services.topology.model import Topology, ZoneKind

DEFAULT_RUN_DIR = Path("var/run")


def up(topology: Topology, run_dir: Path, isolate: bool | None) -> RunState:
    """Start everything; `isolate` None = namespaces when running as root."""
    run_dir = run_dir.resolve()
    existing = state_path(run_dir)
    if existing.exists():
        previous = RunState.load(existing)
        if run_processes(previous.run_id):
            raise StartError(f"already up (run {previous.run_id[:8]}); `isthmus down` first")
    ensure_model()
    use_ns = netns.can_isolate() if isolate is None else isolate
    if use_ns and not netns.can_isolate():
        raise StartError("zone isolation needs root and the `ip` tool")
    zones = [z.name for z in topology.zones]
    net = netns.plan(zones) if use_ns else None
    print(
        "zones in network namespaces: "
        + ("yes (private <-> gateway <-> public)" if net else "no (not root: loopback only)")
    )
    plan = build(
        topology,
        run_dir,
        net,
        metrics_ports=_free_ports(50059, topology.gateway.instances),
        ray_ports={
            z.name: free_port() for z in topology.zones if z.ray is not None and z.ray.multi_node
        },
        ray_tmpdir=ray_tmpdir(run_dir),
        postgres=_postgres(topology, run_dir),
    )
    describe_shape(topology)
    state = start_supervisor(plan_to_json(plan), run_dir)
    try:
        wait_until_serving(state, run_dir)
    except BaseException:
        down(run_dir)
        raise
    return RunState.load(state_path(run_dir))


def _postgres(topology: Topology, run_dir: Path) -> PostgresLayout | None:
    """Where the private zone's PostgreSQL cluster lives, when the topology asks for one."""
    private = next(z for z in topology.zones if z.kind is ZoneKind.PRIVATE)
    if private.database is None or private.database.engine != "postgresql":
        return None
    try:
        return database.locate(run_dir.parent / "private")
    except RuntimeError as exc:  # no server binaries: say how to get them
        raise StartError(str(exc)) from exc


def ray_tmpdir(run_dir: Path) -> Path:
    from services.public.ads.zone import ray_tmpdir as zone_tmpdir

    return zone_tmpdir(run_dir)


def _free_ports(first: int, count: int) -> tuple[int, ...]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(first)
        first = port + 1
        ports.append(port)
    return tuple(ports)


def describe_shape(topology: Topology) -> None:
    """What is about to run: nodes per zone, gateways, what restarts."""
    print(f"gateway: {topology.gateway.instances} instance(s) on {topology.gateway.listen.address}")
    for zone in topology.zones:
        nodes = "no Ray"
        if zone.database is not None and zone.database.engine == "postgresql":
            nodes = f"PostgreSQL on port {zone.database.port}"
        if zone.ray is not None:
            nodes = (
                f"Ray head + {zone.ray.worker_nodes} worker node(s)"
                if zone.ray.multi_node
                else "Ray in the ads process (one node)"
            )
        print(
            f"zone {zone.name} ({zone.kind}, priority {zone.priority}): {nodes}; "
            f"services {', '.join(s.name for s in zone.services)}"
        )
    print("every process is supervised: restarted on exit with back-off (isthmus status)")


def start_supervisor(plan_json: str, run_dir: Path, timeout_s: float = 600) -> RunState:
    """Start the supervisor daemon and follow its log until everything is up (or not)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(exist_ok=True)
    (run_dir / "plan.json").write_text(plan_json)
    path = state_path(run_dir)
    path.unlink(missing_ok=True)
    log_path = run_dir / "logs" / "supervisor.log"
    env = {**os.environ, ENV_RUN: uuid.uuid4().hex, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "services.cli", "supervise", "--run-dir", str(run_dir)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(  # noqa: S603 (our own CLI)
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    shown = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = log_path.read_text(errors="replace").splitlines()
        for line in lines[shown:]:
            if line.startswith("  "):
                print(line, flush=True)
        shown = len(lines)
        if path.exists():
            state = RunState.load(path)
            if state.phase == "ready":
                return state
            if state.phase == "failed":
                proc.wait(timeout=120)
                raise StartError(state.error)
        if proc.poll() is not None:
            raise StartError(f"the supervisor exited ({proc.returncode}); see {log_path}")
        time.sleep(0.3)
    down(run_dir)
    raise StartError(f"not up within {timeout_s:.0f}s; see {log_path}")


def ensure_model(registry: Path = Path("var/models")) -> None:
    if ModelRegistry(registry).current() is None:
        print("no model in the registry yet: training one on the Open Bandit logs")
        subprocess.run([sys.executable, "-m", "services.cli", "train"], check=True)


def token_for(run_dir: Path, caller: str, ttl_s: int = 12 * 3600) -> str:
    key = SecretRef(file=run_dir / "secrets" / "gateway-token.key").read()
    return issue_token(key, caller, int(time.time()) + ttl_s)


def wait_until_serving(state: RunState, run_dir: Path, timeout_s: float = 120) -> None:
    """Until a Rank through the gateway is answered by the model (not degraded)."""
    from isthmus.ads.v1 import ads_pb2, ads_pb2_grpc

    token = token_for(run_dir, "ad-server")
    request = ads_pb2.RankRequest(
        request_id="up-probe",
        context=ads_pb2.RankContext(placement_id="probe", slot_count=1),
        candidates=[ads_pb2.Candidate(ad_id="a", campaign_id="c", cpc_bid_micros=1)],
    )
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with grpc.insecure_channel(state.gateway) as channel:
        stub = ads_pb2_grpc.AdServiceStub(channel)
        while time.monotonic() < deadline:
            try:
                answer = stub.Rank(
                    request, metadata=(("authorization", f"Bearer {token}"),), timeout=5
                )
                if answer.model_version:
                    return
                last = "degraded answer (no ranking replica reachable yet)"
            except grpc.RpcError as exc:
                last = f"{exc.code().name}: {exc.details()}"
            time.sleep(0.5)
    raise StartError(f"the gateway did not serve Rank within {timeout_s:.0f}s: {last}")


def down(run_dir: Path, timeout_s: float = 240) -> int:
    """Ask the supervisor to stop everything; then end whatever of the run is left."""
    path = state_path(run_dir.resolve())
    if not path.exists():
        print("nothing to stop (no run state)")
        return 0
    state = RunState.load(path)
    if state.supervisor_pid and is_running(state.supervisor_pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while is_running(state.supervisor_pid) and time.monotonic() < deadline:
            time.sleep(0.3)
        state = RunState.load(path)
    killed = stop_all(state, grace_s=5.0)  # the supervisor's own net, should it have failed
    path.unlink()
    print(
        f"stopped {len(state.processes)} services"
        + (f"; killed {len(killed)} stragglers" if killed else "")
    )
    return 0


def describe(state: RunState, run_dir: Path, topology: Topology) -> str:
    token = token_for(run_dir, "storefront")
    lines = [
        "",
        "isthmus is up. The gateway is the only door:",
        f"  gateway            {state.gateway}",
    ]
    for p in state.processes:
        if p.kind == "service":
            lines.append(f"  {p.name:<18} {p.address}  ({p.zone} zone; log {p.log})")
    gateways = [p for p in state.processes if p.kind == "gateway"]
    nodes = [p for p in state.processes if p.kind.startswith("ray")]
    lines.append(f"  gateway instances  {len(gateways)} sharing {state.gateway}")
    lines.append(f"  Ray nodes          {len(nodes)} ({', '.join(p.name for p in nodes) or '-'})")
    lines.append("  `isthmus status` shows every process, its health and restarts")
    lines += [
        f"  public zones       {', '.join(public_zones(topology))}",
        "",
        "Call it with a caller token (this one is for `storefront`, valid 12 h):",
        f"  export TOKEN={token}",
        "  buf curl --protocol grpc --http2-prior-knowledge --schema protos \\",
        '    -H "authorization: Bearer $TOKEN" \\',
        '    -d \'{"requestId":"r1","context":{"placementId":"home","slotCount":2},'
        '"candidates":[{"adId":"a1","campaignId":"c1","itemId":"3",'
        '"cpcBidMicros":"500000"}]}\' \\',
        f"    http://{state.gateway}/isthmus.ads.v1.AdService/Rank",
        "",
        "From Python:",
        "  import grpc",
        "  from isthmus.ads.v1 import ads_pb2, ads_pb2_grpc",
        f"  stub = ads_pb2_grpc.AdServiceStub(grpc.insecure_channel('{state.gateway}'))",
        "  stub.Rank(ads_pb2.RankRequest(...), metadata=[('authorization', 'Bearer ' + TOKEN)])",
        "",
        "Stop everything with `isthmus down`.",
    ]
    return "\n".join(lines)
