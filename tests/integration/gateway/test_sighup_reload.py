"""SIGHUP reloads the gateway's config file, as the ReloadConfig RPC does: the change is in
force without a restart (same process), and a broken file is refused with a log line while
the config in force keeps serving."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from isthmus.gateway.v1 import gateway_admin_pb2 as pb
from isthmus.gateway.v1 import gateway_admin_pb2_grpc
from services.gateway.auth import issue_token
from tests.support.processes import free_port, gateway_process, private_gateway_topology

ROOT = Path(__file__).resolve().parents[3]
KEY_HEX = "ab" * 32
BASE = """
auth:
  token_key: {env: ISTHMUS_SIGHUP_TEST_KEY}
  callers: [{name: ops, allow: ["*"], rate_per_s: 1000, burst: 1000}]
"""


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path, str]]:
    listen = free_port()
    topology = private_gateway_topology(
        tmp_path / "topology.yaml", "sighup-test", listen, free_port()
    )
    config = tmp_path / "gateway.yaml"
    config.write_text(BASE)
    log_path = tmp_path / "gateway.log"
    env = {**os.environ, "ISTHMUS_SIGHUP_TEST_KEY": KEY_HEX}
    with gateway_process(topology, config, log_path, env) as proc:
        yield proc, config, log_path, f"127.0.0.1:{listen}"


def version_reader(address: str) -> Callable[[], str]:
    token = issue_token(bytes.fromhex(KEY_HEX), "ops", int(time.time()) + 300)
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = gateway_admin_pb2_grpc.GatewayAdminServiceStub(channel)

    def version() -> str:
        routes = stub.ListRoutes(
            pb.ListRoutesRequest(), metadata=(("authorization", f"Bearer {token}"),)
        )
        return str(routes.config_version)

    return version


def wait_for_line(log_path: Path, text: str, count: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while log_path.read_text().count(text) < count:
        assert time.monotonic() < deadline, log_path.read_text()[-2000:]
        time.sleep(0.05)


def test_sighup_applies_a_changed_file_and_refuses_a_broken_one(
    gateway: tuple[subprocess.Popen[bytes], Path, Path, str],
) -> None:
    proc, config, log_path, address = gateway
    version = version_reader(address)
    first = version()

    config.write_text(BASE + "retry_budget: {budget_percent: 0.0, min_retry_concurrency: 0}\n")
    proc.send_signal(signal.SIGHUP)
    wait_for_line(log_path, "reloaded (policies changed)", 1)
    second = version()
    assert second != first

    config.write_text(BASE + "retry_budget: {budget_percent: -5}\n")  # out of range
    proc.send_signal(signal.SIGHUP)
    wait_for_line(log_path, "configuration refused, the one in force stays", 1)
    assert version() == second  # the config in force still serves
    assert proc.poll() is None

    proc.send_signal(signal.SIGHUP)  # nothing changed since the refused file: still refused
    wait_for_line(log_path, "configuration refused", 2)
    config.write_text(BASE + "retry_budget: [\n")  # not YAML
    proc.send_signal(signal.SIGHUP)
    wait_for_line(log_path, "configuration refused", 3)
    config.unlink()  # gone
    proc.send_signal(signal.SIGHUP)
    wait_for_line(log_path, "configuration refused", 4)
    assert version() == second
    assert proc.poll() is None
    config.write_text(BASE + "retry_budget: {budget_percent: 0.0, min_retry_concurrency: 0}\n")
    proc.send_signal(signal.SIGHUP)
    wait_for_line(log_path, "reloaded (no change)", 1)
    assert version() == second
