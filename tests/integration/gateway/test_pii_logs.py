"""PII never reaches the gateway's logs: SENSITIVE ProfileService calls carrying e-mail, phone
and names (in payloads and in metadata) go through a gateway process logging at DEBUG, with
successes, INVALID_ARGUMENT, an expired deadline, and the private upstream down; then every
line the process wrote is searched for the values. The gateway forwards bytes: no proxied
method has a deserializer, so it cannot decode (or log) a payload."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from isthmus.profile.v1 import profile_pb2 as pb
from isthmus.profile.v1 import profile_pb2_grpc
from services.contract.descriptors import load_descriptor_set, method_table
from services.core.config import ServerConfig, TelemetryConfig
from services.core.telemetry import Telemetry
from services.gateway.app import ProxyHandler, build_gateway
from services.gateway.auth import issue_token
from services.gateway.config import from_topology
from services.private.app import build_server
from services.private.config import PrivateZoneConfig, SecretRef
from services.topology.model import Topology
from tests.support.processes import free_port, gateway_process, private_gateway_topology

ROOT = Path(__file__).resolve().parents[3]
KEY_HEX = "ef" * 32
EMAIL = "grace.hopper.pii@example.org"
PHONE = "+4930987654321"
PHONE_NATIONAL = "030 987654321"
GIVEN, FAMILY = "Gracepiimarker", "Hopperpiimarker"
BAD_EMAIL = "not-an-email-piimarker"
HEADER_EMAIL = "header.pii@example.org"
PII = [EMAIL, PHONE, PHONE_NATIONAL, "987654321", GIVEN, FAMILY, BAD_EMAIL, HEADER_EMAIL]


@pytest.fixture
def private(loop_thread: Any, tmp_path: Path) -> Iterator[tuple[Any, int]]:
    config = PrivateZoneConfig(
        database_url=f"sqlite:///{tmp_path / 'private.db'}",
        master_key=SecretRef(file=tmp_path / "master.key", create_if_missing=True),
        hmac_key=SecretRef(file=tmp_path / "hmac.key", create_if_missing=True),
        server=ServerConfig(),
    )

    async def start() -> Any:
        server, port, runtime = build_server(config, ["profile"])
        await server.start()
        return server, port, runtime

    server, port, runtime = loop_thread.run(start())
    try:
        yield server, port
    finally:
        loop_thread.run(server.stop(0))
        runtime.close()


def run_calls(stub: profile_pb2_grpc.ProfileServiceStub, token: str) -> dict[str, Any]:
    """The calls, each with PII in the payload and an extra PII header; returns the codes."""
    metadata = [("authorization", f"Bearer {token}"), ("x-contact-email", HEADER_EMAIL)]
    codes: dict[str, Any] = {}

    def attempt(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, metadata=metadata, **kwargs)
            codes[name] = grpc.StatusCode.OK
            return result
        except grpc.RpcError as exc:
            codes[name] = exc.code()
            return None

    resolved = attempt(
        "resolve",
        stub.ResolveIdentity,
        pb.ResolveIdentityRequest(
            identifiers=[pb.Identifier(email=EMAIL), pb.Identifier(phone_number=PHONE_NATIONAL)],
            region_code="DE",
            create_if_missing=True,
        ),
        timeout=10,
    )
    uid = resolved.unified_id if resolved is not None else "missing"
    profile = pb.Profile(
        unified_id=uid, given_name=GIVEN, family_name=FAMILY, email=EMAIL, phone_number=PHONE
    )
    attempt("upsert", stub.UpsertProfile, pb.UpsertProfileRequest(profile=profile), timeout=10)
    attempt("get", stub.GetProfile, pb.GetProfileRequest(unified_id=uid), timeout=10)
    attempt(
        "invalid",
        stub.ResolveIdentity,
        pb.ResolveIdentityRequest(identifiers=[pb.Identifier(email=BAD_EMAIL)]),
        timeout=10,
    )
    attempt(
        "invalid_profile",
        stub.UpsertProfile,
        pb.UpsertProfileRequest(profile=pb.Profile(unified_id=uid, email=BAD_EMAIL)),
        timeout=10,
    )
    attempt("deadline", stub.UpsertProfile, pb.UpsertProfileRequest(profile=profile), timeout=1e-4)
    return codes


def test_no_pii_in_gateway_logs_at_debug(
    loop_thread: Any, private: tuple[Any, int], tmp_path: Path
) -> None:
    server, upstream_port = private
    listen = free_port()
    topology = private_gateway_topology(
        tmp_path / "topology.yaml", "pii-test", listen, upstream_port
    )
    config = tmp_path / "gateway.yaml"
    config.write_text("""
auth:
  token_key: {env: ISTHMUS_PII_TEST_KEY}
  callers: [{name: crm, allow: ["*"], rate_per_s: 1000, burst: 1000}]
""")
    log_path = tmp_path / "gateway.log"
    env = {**os.environ, "ISTHMUS_PII_TEST_KEY": KEY_HEX, "GRPC_VERBOSITY": "DEBUG"}
    with gateway_process(topology, config, log_path, env, "--log-level", "DEBUG"):
        token = issue_token(bytes.fromhex(KEY_HEX), "crm", int(time.time()) + 300)
        with grpc.insecure_channel(f"127.0.0.1:{listen}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = profile_pb2_grpc.ProfileServiceStub(channel)
            codes = run_calls(stub, token)
            loop_thread.run(server.stop(0))  # the private zone goes away
            down = run_calls(stub, token)
            deadline = time.monotonic() + 10  # let health checks log the outage too
            while "is unhealthy" not in log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
    assert codes == {
        "resolve": grpc.StatusCode.OK,
        "upsert": grpc.StatusCode.OK,
        "get": grpc.StatusCode.OK,
        "invalid": grpc.StatusCode.INVALID_ARGUMENT,
        "invalid_profile": grpc.StatusCode.INVALID_ARGUMENT,
        "deadline": grpc.StatusCode.DEADLINE_EXCEEDED,
    }
    assert set(down.values()) <= {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }, down
    assert down["resolve"] is grpc.StatusCode.UNAVAILABLE
    text = log_path.read_text(errors="replace")
    assert " DEBUG " in text  # the capture really ran at DEBUG
    assert "is unhealthy" in text  # and really saw the outage
    lowered = text.lower()
    leaked = [value for value in PII if value.lower() in lowered]
    assert leaked == [], f"PII in gateway logs: {leaked}"


def test_the_gateway_cannot_decode_what_it_forwards() -> None:
    """Every proxied method is bytes in, bytes out."""
    methods = method_table(load_descriptor_set())
    topology = Topology.model_validate(
        {
            "name": "pii-test",
            "gateway": {"listen": {"host": "127.0.0.1", "port": 0}},
            "zones": [
                {
                    "name": "private",
                    "kind": "private",
                    "services": [
                        {
                            "name": "profile",
                            "kind": "profile",
                            "endpoints": [{"host": "127.0.0.1", "port": 1}],
                        }
                    ],
                }
            ],
        }
    )
    runtime = build_gateway(
        from_topology(topology), methods=methods, telemetry=Telemetry.create(TelemetryConfig())
    )
    handler = ProxyHandler(runtime.gateway)
    details = [
        type("Details", (), {"method": path, "invocation_metadata": ()})() for path in methods
    ]
    handlers = [handler.service(d) for d in details]
    proxied = [h for h in handlers if h is not None]
    assert len(proxied) == len([m for m in methods.values() if "GatewayAdmin" not in m.service])
    assert all(h.request_deserializer is None for h in proxied)
    assert all(h.response_serializer is None for h in proxied)
