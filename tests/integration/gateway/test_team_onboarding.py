"""A second team's service behind the gateway from configuration only: the loyalty team's
two proto services (examples/loyalty) run as their own processes, one in the private zone
(with grpc.health.v1) and one in a public zone (without: `health_check: none`), and the
shipped `isthmus gateway` serves them from a topology that names their descriptor set. No
isthmus code knows of them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from examples.loyalty.server import message_classes
from isthmus.gateway.v1 import gateway_admin_pb2, gateway_admin_pb2_grpc
from services.contract.codegen import compile_team_set
from services.gateway.auth import issue_token

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
KEY_HEX = "ab" * 32
MEMBERS = "/acme.loyalty.v1.MemberService/"
OFFERS = "/acme.loyalty.v1.OfferService/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")


def write_topology(work: Path, listen: int, members: int, offers: int, sets: Path) -> Path:
    topology = work / "topology.yaml"
    topology.write_text(f"""
name: loyalty-test
gateway:
  listen: {{host: 127.0.0.1, port: {listen}}}
  descriptor_sets: [{sets}]
zones:
  - name: private
    kind: private
    services:
      - name: loyalty-members
        kind: external
        serves: acme.loyalty.v1.MemberService
        endpoints: [{{host: 127.0.0.1, port: {members}}}]
  - name: public-a
    kind: public
    services:
      - name: loyalty-offers
        kind: external
        serves: acme.loyalty.v1.OfferService
        health_check: none
        endpoints: [{{host: 127.0.0.1, port: {offers}}}]
""")
    return topology


@pytest.fixture(scope="module")
def team_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("team") / "loyalty.binpb"
    compile_team_set(ROOT / "examples" / "loyalty" / "protos", out)
    return out


@pytest.fixture
def platform(tmp_path: Path, team_set: Path) -> Iterator[dict[str, Any]]:
    """The team's two services and a gateway, all processes; the set copied so a test may
    rewrite it."""
    sets = tmp_path / "loyalty.binpb"
    sets.write_bytes(team_set.read_bytes())
    ports = {"members": free_port(), "offers": free_port(), "gateway": free_port()}
    topology = write_topology(tmp_path, ports["gateway"], ports["members"], ports["offers"], sets)
    config = tmp_path / "gateway.yaml"
    config.write_text("""
auth:
  token_key: {env: ISTHMUS_TEAM_TEST_KEY}
  callers: [{name: loyalty-app, allow: ["*"]}]
""")
    env = {**os.environ, "ISTHMUS_TEAM_TEST_KEY": KEY_HEX}
    log = (tmp_path / "processes.log").open("w")
    processes = []

    def start(*argv: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", *argv], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        processes.append(process)
        return process

    team = ["examples.loyalty.server", "--descriptor-set", str(sets)]
    members = start(*team, "--serve", "member", "--name", "loyalty-members",
                    "--listen", f"127.0.0.1:{ports['members']}")  # fmt: skip
    offers = start(*team, "--serve", "offer", "--name", "loyalty-offers", "--no-health",
                   "--listen", f"127.0.0.1:{ports['offers']}")  # fmt: skip
    gateway = start("services.cli", "gateway", "--topology", str(topology), "--config", str(config))
    try:
        for port, process in ((ports["members"], members), (ports["offers"], offers)):
            wait_for_port(port, process)
        wait_for_port(ports["gateway"], gateway, timeout_s=60)
        token = issue_token(bytes.fromhex(KEY_HEX), "loyalty-app", int(time.time()) + 600)
        with grpc.insecure_channel(f"127.0.0.1:{ports['gateway']}") as channel:
            yield {
                "channel": channel,
                "metadata": [("authorization", f"Bearer {token}")],
                "classes": message_classes(sets),
                "sets": sets,
                "topology": topology,
                "config": config,
                "env": env,
                "log": tmp_path / "processes.log",
            }
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def call(p: dict[str, Any], path: str, request: Any, reply: str, shape: str = "unary") -> Any:
    m = p["classes"]
    kinds = {
        "unary": p["channel"].unary_unary,
        "server_stream": p["channel"].unary_stream,
        "client_stream": p["channel"].stream_unary,
    }
    stub = kinds[shape](
        path, request_serializer=lambda r: r.SerializeToString(),
        response_deserializer=m[reply].FromString,
    )  # fmt: skip
    answer = stub(request, metadata=p["metadata"], timeout=10)
    return list(answer) if shape == "server_stream" else answer


def test_the_teams_methods_reach_the_right_zone_through_the_shipped_gateway(
    platform: dict[str, Any],
) -> None:
    p, m = platform, platform["classes"]
    balance = call(p, MEMBERS + "GetBalance", m["GetBalanceRequest"](member_email="a@b.io"),
                   "Balance")  # fmt: skip
    assert (balance.points, balance.served_by) == (100, "loyalty-members")  # SENSITIVE: private
    spent = call(p, MEMBERS + "Redeem", m["RedeemRequest"](member_email="a@b.io", points=30),
                 "Balance")  # fmt: skip
    assert (spent.points, spent.served_by) == (70, "loyalty-members")  # undeclared: private
    offers = call(p, OFFERS + "ListOffers", m["ListOffersRequest"](segment="new", limit=2),
                  "Offer", "server_stream")  # fmt: skip
    assert [o.offer_id for o in offers] == ["welcome-10", "double-points"]
    assert {o.served_by for o in offers} == {"loyalty-offers"}  # PUBLIC: the public zone
    views = iter([m["OfferView"](offer_id=f"o{i}") for i in range(3)])
    counted = call(p, OFFERS + "CountViews", views, "ViewCount", "client_stream")
    assert (counted.views, counted.served_by) == (3, "loyalty-offers")
    # A team's application error passes through as the team sent it.
    with pytest.raises(grpc.RpcError) as refused:
        call(p, MEMBERS + "Redeem", m["RedeemRequest"](member_email="a@b.io", points=10**6),
             "Balance")  # fmt: skip
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_the_door_inspects_a_teams_public_methods_too(platform: dict[str, Any]) -> None:
    p, m = platform, platform["classes"]
    with pytest.raises(grpc.RpcError) as refused:
        call(p, OFFERS + "ListOffers", m["ListOffersRequest"](segment="carol@example.com"),
             "Offer", "server_stream")  # fmt: skip
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(refused.value)
    assert status is not None
    details = error_details_pb2.BadRequest()
    status.details[0].Unpack(details)
    assert [v.field for v in details.field_violations] == ["segment"]
    assert "carol@example.com" not in str(refused.value.details())
    with pytest.raises(grpc.RpcError) as unknown:
        call(p, "/acme.loyalty.v1.OfferService/Nope", m["ListOffersRequest"](), "Offer")
    assert unknown.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_a_set_breaking_the_rules_is_refused_on_reload_and_at_start(
    platform: dict[str, Any], tmp_path: Path
) -> None:
    p, m = platform, platform["classes"]
    good = p["sets"].read_bytes()
    bad_root = tmp_path / "bad"
    text = (ROOT / "examples/loyalty/protos/acme/loyalty/v1/loyalty.proto").read_text()
    text = text.replace(
        "  string segment = 1;", "  string segment = 1 [(isthmus.options.v1.pii) = true];"
    )
    (bad_root / "acme/loyalty/v1").mkdir(parents=True)
    (bad_root / "acme/loyalty/v1/loyalty.proto").write_text(text)
    compile_team_set(bad_root, p["sets"])  # the team ships a broken set in place
    admin = gateway_admin_pb2_grpc.GatewayAdminServiceStub(p["channel"])
    with pytest.raises(grpc.RpcError) as refused:
        admin.ReloadConfig(gateway_admin_pb2.ReloadConfigRequest(), metadata=p["metadata"],
                           timeout=10)  # fmt: skip
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "/acme.loyalty.v1.OfferService/ListOffers" in refused.value.details()
    assert "ListOffersRequest.segment" in refused.value.details()
    # The old contract stays in force: the team's methods still work.
    offers = call(p, OFFERS + "ListOffers", m["ListOffersRequest"](limit=1), "Offer",
                  "server_stream")  # fmt: skip
    assert [o.served_by for o in offers] == ["loyalty-offers"]
    # A gateway started on the broken set refuses to start, naming the method.
    started = subprocess.run(
        [sys.executable, "-m", "services.cli", "gateway", "--topology", str(p["topology"]),
         "--config", str(p["config"]), "--listen", f"127.0.0.1:{free_port()}"],
        cwd=ROOT, env=p["env"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert started.returncode != 0
    assert "/acme.loyalty.v1.OfferService/ListOffers" in started.stderr
    # The fixed set reloads; nothing else changed, so only the contract is new.
    p["sets"].write_bytes(good)
    reloaded = admin.ReloadConfig(gateway_admin_pb2.ReloadConfigRequest(), metadata=p["metadata"],
                                  timeout=10)  # fmt: skip
    assert list(reloaded.changes) == []  # the same set as the one in force


def test_the_contract_command_lints_a_teams_set(team_set: Path, tmp_path: Path) -> None:
    linted = subprocess.run(
        [sys.executable, "-m", "services.cli", "contract", "--descriptor-set", str(team_set)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert linted.returncode == 0, linted.stderr
    assert "/acme.loyalty.v1.MemberService/Redeem" in linted.stdout
    assert "UNSPECIFIED (treated as SENSITIVE)" in linted.stdout
    assert "/isthmus.ads.v1.AdService/Rank" not in linted.stdout  # the team's methods only
    junk = tmp_path / "junk.binpb"
    junk.write_bytes(b"\x00\x01junk")
    refused = subprocess.run(
        [sys.executable, "-m", "services.cli", "contract", "--descriptor-set", str(junk)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "junk.binpb" in refused.stderr
