"""mTLS identity and SIGTERM handling of the server foundation, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from isthmus.orders.v1 import orders_pb2, orders_pb2_grpc
from services.core.config import ServerConfig
from services.core.server import channel_credentials
from services.topology.model import Endpoint, TlsConfig
from tests.integration.certs import ScratchCA
from tests.integration.sample_services import orders_binding


@pytest.fixture
def mtls_port(start_server, tmp_path: Path) -> tuple[int, ScratchCA]:  # type: ignore[no-untyped-def]
    ca = ScratchCA(tmp_path)
    cert, key = ca.issue("orders.private", server=True)
    tls = TlsConfig(
        enabled=True, ca_file=ca.ca_file, cert_file=cert, key_file=key, require_client_cert=True
    )
    _, port = start_server([orders_binding()], ServerConfig(tls=tls))
    return port, ca


def refund_reason(port: int, creds: grpc.ChannelCredentials, caller: str | None) -> str:
    metadata = [("x-isthmus-caller", caller)] if caller else []
    with grpc.secure_channel(f"localhost:{port}", creds) as ch:
        reply = orders_pb2_grpc.OrderServiceStub(ch).RefundOrder(
            orders_pb2.RefundOrderRequest(order_id="o"), metadata=metadata, timeout=10
        )
    return str(reply.refund.reason)


def client_creds(ca: ScratchCA, cn: str | None) -> grpc.ChannelCredentials:
    if cn is None:
        return channel_credentials(TlsConfig(enabled=True, ca_file=ca.ca_file))
    cert, key = ca.issue(cn)
    return channel_credentials(
        TlsConfig(enabled=True, ca_file=ca.ca_file, cert_file=cert, key_file=key)
    )


def test_gateway_certificate_may_name_the_caller(mtls_port: tuple[int, ScratchCA]) -> None:
    port, ca = mtls_port
    assert refund_reason(port, client_creds(ca, "isthmus-gateway"), "checkout") == (
        "checkout|forwarded"
    )
    assert refund_reason(port, client_creds(ca, "isthmus-gateway"), None) == (
        "isthmus-gateway|certificate"
    )


def test_other_certificates_cannot_impersonate(mtls_port: tuple[int, ScratchCA]) -> None:
    port, ca = mtls_port
    assert refund_reason(port, client_creds(ca, "reporting"), "checkout") == (
        "reporting|certificate"
    )


def test_client_without_certificate_is_refused(mtls_port: tuple[int, ScratchCA]) -> None:
    port, ca = mtls_port
    with pytest.raises(grpc.RpcError) as err:
        refund_reason(port, client_creds(ca, None), None)
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE


def test_plaintext_trust_is_refused_off_loopback() -> None:
    from pydantic import ValidationError

    from services.core.config import CallerPolicy

    with pytest.raises(ValidationError, match=r"listen\.host is 10\.1\.2\.3"):
        ServerConfig(
            listen=Endpoint(host="10.1.2.3", port=0),
            caller=CallerPolicy(trust_header_without_tls=True),
        )


def test_sigterm_drains_in_flight_calls_then_exits_zero() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.sample_services", "5"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = orders_pb2_grpc.OrderServiceStub(ch)
            grpc.channel_ready_future(ch).result(timeout=10)
            result: dict[str, object] = {}

            def slow_call() -> None:
                try:
                    result["reply"] = stub.GetOrder(
                        orders_pb2.GetOrderRequest(order_id="slow-1.0"), timeout=10
                    )
                except grpc.RpcError as exc:  # recorded, asserted below
                    result["error"] = exc.code()

            worker = threading.Thread(target=slow_call)
            worker.start()
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            worker.join(15)
        assert "error" not in result, result
        assert result["reply"].order.order_id == "slow-1.0"  # type: ignore[attr-defined]
        assert proc.wait(15) == 0
        assert proc.stdout.read().strip() == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
