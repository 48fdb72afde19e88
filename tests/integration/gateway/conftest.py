"""A gateway in front of real upstream servers: public-a (3 endpoints), public-b (1),
private (1). Methods come from the shipped contract plus the test EchoService proto."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor_pb2 import FileDescriptorSet
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from services.contract.codegen import PROTO_ROOT, compile_descriptor_set
from services.contract.descriptors import MethodInfo, load_descriptor_set, method_table
from services.core.config import ServerConfig, TelemetryConfig
from services.core.secret_ref import SecretRef
from services.core.telemetry import Telemetry
from services.gateway.app import GatewayRuntime, build_gateway
from services.gateway.config import (
    AuthConfig,
    CallerConfig,
    ClusterConfig,
    GatewayConfig,
    HealthCheckConfig,
    RouteConfig,
    RouteMatch,
)
from services.topology.model import Endpoint, ZoneKind
from tests.integration.gateway.upstreams import ECHO, start_upstream

TEST_PROTOS = Path(__file__).resolve().parents[2] / "protos"
TOKEN_KEY_HEX = "ab" * 32


@pytest.fixture(scope="session")
def test_contract(tmp_path_factory: pytest.TempPathFactory) -> FileDescriptorSet:
    """The shipped contract plus the test EchoService, as one descriptor set."""
    root = tmp_path_factory.mktemp("protos")
    import shutil

    shutil.copytree(PROTO_ROOT, root, dirs_exist_ok=True)
    shutil.copytree(TEST_PROTOS, root, dirs_exist_ok=True)
    out = root / "set.binpb"
    compile_descriptor_set(root, out)
    return load_descriptor_set(out.read_bytes())


@pytest.fixture(scope="session")
def test_methods(test_contract: FileDescriptorSet) -> dict[str, MethodInfo]:
    table = method_table(test_contract)
    assert f"/{ECHO}/Chat" in table
    return table


@dataclass
class Upstream:
    name: str
    server: Any
    port: int
    echo: Any
    ads: Any
    stopped: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Lab:
    loop: Any
    runtime: GatewayRuntime
    upstreams: dict[str, list[Upstream]]
    channel: grpc.Channel
    port: int
    config_holder: list[GatewayConfig] = field(default_factory=list)
    metrics: Any = None

    def counter(self, name: str) -> int:
        """Sum of an isthmus.gateway.* counter over all attribute sets."""
        data = self.metrics.get_metrics_data()
        return int(
            sum(
                point.value
                for rm in data.resource_metrics
                for sm in rm.scope_metrics
                for metric in sm.metrics
                if metric.name == f"isthmus.gateway.{name}"
                for point in metric.data.data_points
            )
        )

    def attempts_by(self) -> dict[tuple[str, str], int]:
        """isthmus.gateway.attempts by (cluster, rpc_method)."""
        data = self.metrics.get_metrics_data()
        return {
            (str(p.attributes["cluster"]), str(p.attributes["rpc_method"])): int(p.value)
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == "isthmus.gateway.attempts"
            for p in metric.data.data_points
        }

    def kill(self, upstream: Upstream) -> None:
        self.loop.run(upstream.server.stop(0))
        upstream.stopped = True

    def echo_calls(self, method: str) -> int:
        return sum(u.echo.calls[method] for group in self.upstreams.values() for u in group)

    def wait_healthy_count(self, cluster: str, expected: int, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        runtime = self.runtime.gateway.snapshot.clusters[cluster]
        while time.monotonic() < deadline:
            if sum(e.healthy for e in runtime.endpoints) == expected:
                return
            time.sleep(0.05)
        raise AssertionError(f"{cluster} never had {expected} healthy endpoints")


def lab_config(ups: dict[str, list[Upstream]], **overrides: Any) -> GatewayConfig:
    def cluster(name: str, kind: ZoneKind) -> ClusterConfig:
        return ClusterConfig(
            name=name,
            zone=name,
            zone_kind=kind,
            endpoints=[Endpoint(host="127.0.0.1", port=u.port) for u in ups[name]],
        )

    values: dict[str, Any] = {
        "server": ServerConfig(max_receive_message_bytes=64 * 1024),
        "clusters": [
            cluster("public-a", ZoneKind.PUBLIC),
            cluster("public-b", ZoneKind.PUBLIC),
            cluster("private", ZoneKind.PRIVATE),
        ],
        "routes": [
            RouteConfig(
                name="secret",
                match=RouteMatch(method=f"/{ECHO}/Secret"),
                clusters=["private"],
                per_try_timeout_s=1.0,
            ),
            RouteConfig(
                name="echo",
                match=RouteMatch(service=ECHO),
                clusters=["public-a", "public-b"],
                per_try_timeout_s=2.0,
            ),
            RouteConfig(
                name="rank",
                match=RouteMatch(method="/isthmus.ads.v1.AdService/Rank"),
                clusters=["public-a", "public-b"],
                fallback="ads_bid_only",
            ),
        ],
        "health_check": HealthCheckConfig(interval_s=0.2, timeout_s=0.2),
        "auth": AuthConfig(
            token_key=SecretRef(env="ISTHMUS_TEST_TOKEN_KEY"),
            callers=[
                CallerConfig(name="checkout", allow=["*"], rate_per_s=10_000, burst=10_000),
                CallerConfig(name="reporting", allow=[f"/{ECHO}/Unary"], rate_per_s=1, burst=2),
            ],
        ),
    }
    values.update(overrides)
    return GatewayConfig.model_validate(values)


@pytest.fixture
def lab(
    loop_thread: Any,
    test_methods: dict[str, MethodInfo],
    test_contract: FileDescriptorSet,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Lab]:
    monkeypatch.setenv("ISTHMUS_TEST_TOKEN_KEY", TOKEN_KEY_HEX)
    sizes = {"public-a": 3, "public-b": 1, "private": 1}
    ups: dict[str, list[Upstream]] = {}
    for cluster, n in sizes.items():
        ups[cluster] = []
        for i in range(n):
            name = f"{cluster}-{i}"
            server, port, echo, ads = loop_thread.run(start_upstream(name))
            ups[cluster].append(Upstream(name, server, port, echo, ads))
    config = lab_config(ups)
    holder = [config]

    metrics = InMemoryMetricReader()
    telemetry = Telemetry.create(TelemetryConfig(), metric_readers=[metrics])

    async def start() -> GatewayRuntime:
        runtime = build_gateway(
            config,
            lambda: holder[0],
            methods=test_methods,
            telemetry=telemetry,
            descriptors=test_contract,
        )
        await runtime.start()
        return runtime

    runtime = loop_thread.run(start())
    channel = grpc.insecure_channel(f"127.0.0.1:{runtime.port}")
    try:
        yield Lab(loop_thread, runtime, ups, channel, runtime.port, holder, metrics)
    finally:
        channel.close()
        loop_thread.run(runtime.stop(0))
        for group in ups.values():
            for upstream in group:
                if not upstream.stopped:
                    loop_thread.run(upstream.server.stop(0))


def token(caller: str, ttl_s: int = 300) -> str:
    from services.gateway.auth import issue_token

    return issue_token(bytes.fromhex(TOKEN_KEY_HEX), caller, int(time.time()) + ttl_s)


def auth(caller: str = "checkout") -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token(caller)}")]
