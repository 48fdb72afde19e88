"""`isthmus up` and `isthmus down`: the whole hybrid cloud on one machine."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import grpc

from services.core.server import free_port
from services.gateway.auth import issue_token
from services.local import netns
from services.local.plan import build, public_zones
from services.local.supervisor import (
    RunState,
    StartError,
    run_processes,
    start_all,
    state_path,
    stop_all,
)

__all__ = ["StartError", "down", "up"]
from services.models.registry import ModelRegistry
from services.private.config import SecretRef
from services.topology.model import Topology

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
    plan = build(topology, run_dir, net, metrics_port=free_port(50059))
    state = start_all(plan)
    try:
        wait_until_serving(state, run_dir)
    except BaseException:
        stop_all(state)
        raise
    return state


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


def down(run_dir: Path) -> int:
    path = state_path(run_dir.resolve())
    if not path.exists():
        print("nothing to stop (no run state)")
        return 0
    state = RunState.load(path)
    killed = stop_all(state)
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
        if p.name != "gateway":
            lines.append(f"  {p.name:<18} {p.address}  ({p.zone} zone; log {p.log})")
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
