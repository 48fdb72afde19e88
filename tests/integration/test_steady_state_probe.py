"""`helm test`'s probe against a real `isthmus gateway` process and its real Prometheus
endpoint: the exact command the chart's test pod runs (python -m services.deploy.steady_state)
passes while the gateway's failures are the callers' own, and deviates -- exit 1, the class
named -- once the private upstream is gone and SENSITIVE calls fail UNAVAILABLE. The alert
rule's `error_type` selector is checked against the same exposition."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from isthmus.profile.v1 import profile_pb2, profile_pb2_grpc
from services.gateway.auth import issue_token
from tests.support.processes import free_port, gateway_process, private_gateway_topology

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KEY_HEX = "cd" * 32
GET_PROFILE = "isthmus.profile.v1.ProfileService/GetProfile"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, int]]:
    listen, metrics = free_port(), free_port()
    topology = private_gateway_topology(tmp_path / "topology.yaml", "probe", listen, free_port())
    config = tmp_path / "gateway.yaml"
    config.write_text(f"""
server:
  listen: {{host: 127.0.0.1, port: {listen}}}
  telemetry: {{metrics: prometheus, prometheus_listen: {{host: 127.0.0.1, port: {metrics}}}}}
auth:
  token_key: {{env: ISTHMUS_PROBE_TEST_KEY}}
  callers: [{{name: ops, allow: ["*"], rate_per_s: 1000, burst: 1000}}]
""")
    log = tmp_path / "gateway.log"
    env = {**os.environ, "ISTHMUS_PROBE_TEST_KEY": KEY_HEX}
    with gateway_process(topology, config, log, env) as proc:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the gateway's /metrics never came up"
                time.sleep(0.2)
        yield f"127.0.0.1:{listen}", metrics


def get_profiles(address: str, n: int, with_token: bool) -> list[grpc.StatusCode]:
    token = issue_token(bytes.fromhex(KEY_HEX), "ops", int(time.time()) + 300)
    metadata = (("authorization", f"Bearer {token}"),) if with_token else ()
    codes = []
    with grpc.insecure_channel(address) as channel:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        for _ in range(n):
            try:
                stub.GetProfile(
                    profile_pb2.GetProfileRequest(unified_id="u-1"), metadata=metadata, timeout=5
                )
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
    return codes


def probe(metrics_port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.deploy.steady_state",
         "--gateway-pods", f"127.0.0.1:{metrics_port}", "--window-s", "4",
         "--min-success-ratio", "0.999", "--sensitive-method", GET_PROFILE,
         "--public-method", "isthmus.ads.v1.AdService/Rank",
         "--public-cluster", "ads-public-a", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def watch(metrics_port: int, calls: callable, *extra: str) -> tuple[int, str]:  # type: ignore[valid-type]
    """Run the probe; make `calls` once it has taken its first scrape; its exit and output."""
    proc = probe(metrics_port, *extra)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("watching 1 gateway pod(s)"), first
    calls()  # type: ignore[operator]
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, first + out


def test_the_probe_passes_when_only_callers_err_and_deviates_when_the_platform_fails(
    gateway: tuple[str, int],
) -> None:
    address, metrics = gateway

    # Callers' own mistakes (no token: UNAUTHENTICATED) are not the platform failing.
    code, out = watch(metrics, lambda: get_profiles(address, 5, with_token=False))
    assert code == 0, out
    assert "gateway pods judged over the window: 1" in out
    assert "SENSITIVE success ratio 1.000000 over 5 calls (0 failed" in out
    assert "PUBLIC success ratio: no calls in the window: not measured" in out
    assert "SENSITIVE attempts on public clusters: 0" in out
    assert out.rstrip().endswith("steady state: ok")

    # A quiet class deviates when calls are required.
    code, out = watch(
        metrics, lambda: get_profiles(address, 2, with_token=False), "--require-calls"
    )
    assert code == 1, out
    assert "DEVIATED  PUBLIC success ratio: no calls in the window" in out

    # The profile upstream is not running: authorised calls fail UNAVAILABLE.
    failed: list[grpc.StatusCode] = []
    code, out = watch(metrics, lambda: failed.extend(get_profiles(address, 4, with_token=True)))
    assert set(failed) == {grpc.StatusCode.UNAVAILABLE}
    assert code == 1, out
    assert "DEVIATED  SENSITIVE success ratio 0.000000 over 4 calls (4 failed" in out
    assert out.rstrip().endswith("steady state: deviated")

    # The alert rule counts the same calls as failed: only they carry a non-empty error_type
    # (the exporter writes the label empty elsewhere, which PromQL treats as absent).
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as r:
        counts = [
            line for line in r.read().decode().splitlines()
            if line.startswith("rpc_server_call_duration_seconds_count") and GET_PROFILE in line
        ]  # fmt: skip
    unavailable = [line for line in counts if 'rpc_response_status_code="UNAVAILABLE"' in line]
    unauthenticated = [line for line in counts if '"UNAUTHENTICATED"' in line]
    assert unavailable
    assert all('error_type="UNAVAILABLE"' in line for line in unavailable)
    assert unauthenticated
    assert all('error_type=""' in line for line in unauthenticated)


def test_a_gateway_pod_whose_counters_cannot_be_read_is_a_deviation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from services.deploy import steady_state

    silent = free_port()  # nothing listens there: a pod that does not answer its scrape
    code = steady_state.main(
        ["--gateway-pods", f"127.0.0.1:{silent}", "--window-s", "0.1",
         "--sensitive-method", GET_PROFILE]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert f"DEVIATED  gateway pod 127.0.0.1:{silent}: metrics not read" in out
    assert "DEVIATED  no gateway pod read at both ends of the window" in out
