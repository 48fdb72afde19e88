"""Endpoints discovered from a file (Ray Serve direct ingress): real replica stand-ins that
answer /ray.serve.RayServeAPIService/Healthz, the file rewritten under load."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.contract.descriptors import MethodInfo
from services.core.config import ServerConfig, TelemetryConfig
from services.core.secret_ref import SecretRef
from services.core.server import Binding, Server, create_server
from services.core.telemetry import Telemetry
from services.gateway.app import GatewayRuntime, build_gateway
from services.gateway.config import (
    SERVE_HEALTHZ,
    AuthConfig,
    CallerConfig,
    ClusterConfig,
    DiscoveryConfig,
    GatewayConfig,
    HealthCheckConfig,
    RouteConfig,
    RouteMatch,
)
from services.topology.model import ZoneKind
from tests.integration.gateway.conftest import TOKEN_KEY_HEX, auth
from tests.integration.gateway.upstreams import ECHO, Echo, _msg, _text


class Replica:
    """A Serve replica stand-in: EchoService plus Serve's Healthz (OK, or UNAVAILABLE with
    "DRAINING"/"UNHEALTHY" like Serve). Its grpc.health.v1 always says SERVING, so a
    gateway that used the wrong check would send it traffic."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.echo = Echo(name)
        self.healthz: str = "OK"
        self.healthz_calls = 0
        self.server: Server | None = None
        self.port = 0

    async def _healthz(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.healthz_calls += 1
        assert request == b""
        if self.healthz != "OK":
            await context.abort(grpc.StatusCode.UNAVAILABLE, self.healthz)
        return b"\x0a\x07success"  # HealthzResponse{message: "success"}

    def binding(self) -> Binding:
        service, method = SERVE_HEALTHZ.strip("/").split("/")
        handler = grpc.method_handlers_generic_handler(
            service, {method: grpc.unary_unary_rpc_method_handler(self._healthz)}
        )
        return Binding(service, lambda s: s.add_generic_rpc_handlers((handler,)), reflect=False)

    async def start(self) -> None:
        bindings = [self.echo.binding(), self.binding()]
        self.server, self.port = create_server(ServerConfig(), bindings)
        await self.server.start()

    @property
    def entry(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "id": f"replica-{self.name}"}

    def served(self) -> int:
        return sum(self.echo.calls.values())


@dataclass
class Serve:
    loop: Any
    runtime: GatewayRuntime
    replicas: list[Replica]
    channel: grpc.Channel
    file: Path
    generation: int = 0

    def publish(self, replicas: list[Replica], service: str = "ads-a") -> None:
        """Write the endpoints file the way the Serve controller does: temp file + rename."""
        self.generation += 1
        body = {
            "service": service,
            "generation": self.generation,
            "updated_unix_s": time.time(),
            "endpoints": [r.entry for r in replicas],
        }
        write_atomically(self.file, json.dumps(body).encode())

    def states(self) -> dict[str, tuple[bool, bool]]:
        """address -> (healthy, removed) as the gateway sees it."""
        cluster = self.runtime.gateway.snapshot.clusters["ads-a"]
        return {e.address: (e.healthy, e.removed) for e in cluster.endpoints}

    def wait_for(self, predicate: Any, what: str, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; gateway sees {self.states()}")


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def address(replica: Replica) -> str:
    return f"127.0.0.1:{replica.port}"


@pytest.fixture
def serve(
    loop_thread: Any,
    test_methods: dict[str, MethodInfo],
    test_contract: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Serve]:
    monkeypatch.setenv("ISTHMUS_TEST_TOKEN_KEY", TOKEN_KEY_HEX)
    replicas = [Replica(f"r{i}") for i in range(4)]
    for replica in replicas:
        loop_thread.run(replica.start())
    endpoints_file = tmp_path / "ads-a.endpoints.json"
    config = GatewayConfig(
        clusters=[
            ClusterConfig(
                name="ads-a",
                zone="public-a",
                zone_kind=ZoneKind.PUBLIC,
                endpoints_file=endpoints_file,
                health_check="serve_healthz",
            )
        ],
        routes=[
            RouteConfig(name=m.lower(), match=RouteMatch(method=f"/{ECHO}/{m}"), clusters=["ads-a"])
            for m in ("Unary", "Write")
        ],
        health_check=HealthCheckConfig(interval_s=0.2, timeout_s=0.5),
        discovery=DiscoveryConfig(poll_interval_s=0.1),
        auth=AuthConfig(
            token_key=SecretRef(env="ISTHMUS_TEST_TOKEN_KEY"),
            callers=[CallerConfig(name="checkout", allow=["*"], rate_per_s=1e6, burst=10**6)],
        ),
    )
    telemetry = Telemetry.create(TelemetryConfig())
    lab = Serve(loop_thread, None, replicas, None, endpoints_file)  # type: ignore[arg-type]
    lab.publish(replicas[:2])

    async def start() -> GatewayRuntime:
        runtime = build_gateway(
            config, methods=test_methods, telemetry=telemetry, descriptors=test_contract
        )
        await runtime.start()
        return runtime

    lab.runtime = loop_thread.run(start())
    lab.channel = grpc.insecure_channel(f"127.0.0.1:{lab.runtime.port}")
    try:
        yield lab
    finally:
        lab.channel.close()
        loop_thread.run(lab.runtime.stop(0))
        for replica in replicas:
            assert replica.server is not None
            loop_thread.run(replica.server.stop(0))


class Load:
    """8 callers in threads until stopped; every failure is kept."""

    def __init__(self, lab: Serve, method: str = "Unary", text: str = "x") -> None:
        self.ok = 0
        self.errors: list[tuple[Any, str]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        stub = lab.channel.unary_unary(f"/{ECHO}/{method}")
        metadata = auth()

        def worker() -> None:
            while not self._stop.is_set():
                try:
                    stub(_msg(text), metadata=metadata, timeout=5)
                    with self._lock:
                        self.ok += 1
                except grpc.RpcError as exc:
                    with self._lock:
                        self.errors.append((exc.code(), exc.details()))

        self._threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def test_starts_from_the_file_and_uses_serve_healthz(serve: Serve) -> None:
    r0, r1, r2, _ = serve.replicas
    assert serve.states() == {address(r0): (True, False), address(r1): (True, False)}
    assert r0.healthz_calls >= 1
    assert r2.healthz_calls == 0
    stub = serve.channel.unary_unary(f"/{ECHO}/Unary")
    served_by = {_text(stub(_msg("x"), metadata=auth(), timeout=5)) for _ in range(40)}
    assert served_by == {"r0:x", "r1:x"}


def test_file_changes_under_load_fail_no_call(serve: Serve) -> None:
    """Add an endpoint, then remove one, while 8 callers run a method that is never retried
    (Write): a failure could not hide behind a retry."""
    r0, r1, r2, _ = serve.replicas
    load = Load(serve, method="Write")
    try:
        time.sleep(0.5)
        serve.publish([r0, r1, r2])
        serve.wait_for(lambda: r2.served() > 20, "the added endpoint to take traffic")
        serve.publish([r1, r2])
        serve.wait_for(lambda: address(r0) not in serve.states(), "r0 to drain and be reaped")
        after_removal = r0.served()
        time.sleep(0.5)
    finally:
        load.stop()
    assert load.errors == []
    assert load.ok > 200
    assert r0.served() == after_removal  # nothing reached the removed endpoint after draining
    assert serve.states() == {address(r1): (True, False), address(r2): (True, False)}


def test_removal_lets_calls_in_flight_finish(serve: Serve) -> None:
    """A slow call on an endpoint removed from the file completes normally."""
    r0, r1, r2, _ = serve.replicas
    serve.publish([r0])
    serve.wait_for(lambda: serve.states() == {address(r0): (True, False)}, "only r0")
    stub = serve.channel.unary_unary(f"/{ECHO}/Write")
    future = stub.future(_msg("sleep:0.6"), metadata=auth(), timeout=5)
    serve.wait_for(lambda: r0.echo.calls["Write"] == 1, "the slow call to start")
    serve.publish([r1, r2])
    serve.wait_for(lambda: serve.states().get(address(r0)) == (True, True), "r0 draining")
    assert _text(future.result()) == "r0:sleep:0.6"
    serve.wait_for(lambda: address(r0) not in serve.states(), "r0 reaped")
    assert r0.echo.cancelled == 0


def test_an_endpoint_that_fails_healthz_takes_no_traffic(serve: Serve) -> None:
    r0, r1, _, r3 = serve.replicas
    r3.healthz = "DRAINING"
    serve.publish([r0, r1, r3])
    serve.wait_for(lambda: r3.healthz_calls >= 3, "r3 to be checked a few times")
    load = Load(serve)
    time.sleep(0.5)
    load.stop()
    assert load.errors == []
    assert load.ok > 50
    assert r3.served() == 0
    assert serve.states()[address(r3)] == (False, False)
    r3.healthz = "OK"  # recovers: takes traffic from the next passing check on
    serve.wait_for(lambda: serve.states()[address(r3)] == (True, False), "r3 healthy")


def test_bad_or_missing_file_keeps_the_last_good_set(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    _, r1, r2, _ = serve.replicas
    caplog.set_level(logging.WARNING, logger="services.gateway.discovery")
    load = Load(serve)

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    def refused(count: int) -> None:
        """Wait until the watcher has read and refused the `count`th bad file (a warning
        each), then a few more polls: the set in force must not have moved."""
        serve.wait_for(lambda: len(warnings()) >= count, f"warning {count}")
        rounds = serve.runtime.discovery.rounds
        serve.wait_for(lambda: serve.runtime.discovery.rounds >= rounds + 3, "three more polls")
        assert serve.states() == good

    bad_files = (
        b"{not json",
        b'{"service": "ads-a", "generation": 99, "endpoints": [{"host": "x y", "port": 1}]}',
        json.dumps(
            {"service": "ads-b", "generation": 99, "updated_unix_s": 0, "endpoints": []}
        ).encode(),
    )
    try:
        good = serve.states()
        for count, content in enumerate(bad_files, start=1):
            write_atomically(serve.file, content)
            refused(count)
        serve.file.unlink()
        refused(4)
        serve.generation = -1  # generation 0 < 1 in force: stale, refused
        serve.publish([r2])
        refused(5)
    finally:
        load.stop()
    assert load.errors == []
    assert load.ok > 100
    messages = warnings()
    assert len(messages) == 5, messages  # once per distinct problem, not once per poll
    assert all("keeping the last good set" in w for w in messages)
    assert "not JSON" in messages[0]
    assert "older than the one in force" in messages[-1]
    serve.generation = 10
    serve.publish([r1, r2])
    serve.wait_for(
        lambda: serve.states() == {address(r1): (True, False), address(r2): (True, False)},
        "the next good file to apply",
    )
    assert any("valid again" in r.getMessage() for r in caplog.records)


def test_a_reload_that_rebuilds_the_cluster_keeps_serving(serve: Serve) -> None:
    """Changing a discovered cluster's config rebuilds it; the new one reads the file at once
    and keeps the endpoints' health, so no call fails in between."""
    r0, r1, _, _ = serve.replicas
    gateway = serve.runtime.gateway
    old_config = gateway.snapshot.config
    (cluster,) = old_config.clusters
    new_config = old_config.model_copy(
        update={"clusters": [cluster.model_copy(update={"health_check": "grpc_health"})]}
    )
    load = Load(serve, method="Write")
    try:
        time.sleep(0.3)
        retired = serve.loop.run(_reload(gateway, new_config))
        assert serve.states() == {address(r0): (True, False), address(r1): (True, False)}
        time.sleep(0.5)
    finally:
        load.stop()
    assert load.errors == []
    assert load.ok > 50
    serve.loop.run(_close(retired))


async def _reload(gateway: Any, config: GatewayConfig) -> Any:
    return gateway.reload(config)


async def _close(clusters: Any) -> None:
    await asyncio.gather(*(c.close() for c in clusters))
