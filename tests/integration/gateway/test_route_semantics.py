"""Route and cluster semantics in the Envoy manner, through the real gateway and real
upstreams: with default route settings nothing in the gateway cuts a call the caller gave no
deadline (all four call shapes, compared with the same call made direct); a per-try timeout
applies only where a retry can follow (a server stream only until its first response); a
route timeout bounds the whole call of any shape; `retry_on` is per route; a cluster may have
no active health checks and still ejects a dead endpoint on its own outlier settings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from isthmus.gateway.v1 import gateway_admin_pb2 as pb
from isthmus.gateway.v1 import gateway_admin_pb2_grpc
from services.gateway.config import ClusterConfig, OutlierConfig, RouteConfig, RouteMatch
from services.topology.model import Endpoint, ZoneKind
from tests.integration.gateway.conftest import auth
from tests.integration.gateway.upstreams import ECHO, Echo, _msg, _text

pytestmark = pytest.mark.integration
SLOW = 1.5  # longer than any timeout the lab's routes set


def reconfigure(lab: Any, **echo_route: Any) -> None:
    """Replace the echo route's settings (everything else as the lab has it) and reload."""
    config = lab.config_holder[0]
    routes = [r.model_copy(update=echo_route) if r.name == "echo" else r for r in config.routes]
    lab.config_holder[0] = config.model_copy(update={"routes": routes})
    stub = gateway_admin_pb2_grpc.GatewayAdminServiceStub(lab.channel)
    stub.ReloadConfig(pb.ReloadConfigRequest(), metadata=auth())


def defaults_for_echo(lab: Any) -> None:
    """The echo route as a new operator would write it: match and clusters only."""
    fresh = RouteConfig(name="echo", match=RouteMatch(service=ECHO), clusters=["public-a"])
    reconfigure(lab, **{k: getattr(fresh, k) for k in RouteConfig.model_fields if k != "name"})


SHAPES: dict[str, tuple[str, Any, Any]] = {
    # shape -> (method, request(s), the answer as text)
    "unary": ("Unary", f"sleep:{SLOW}", None),
    "server-streaming": ("Split", f"sleep:{SLOW},a,b", ["a", "b"]),
    "client-streaming": ("Join", [f"sleep:{SLOW}", "x", "y"], "x+y"),
    "bidi-streaming": ("Chat", ["p", f"sleep:{SLOW}", "q"], ["P", "Q"]),
}


def shaped_call(channel: grpc.Channel, shape: str, metadata: Any, timeout: float | None) -> Any:
    method, request, _ = SHAPES[shape]
    path = f"/{ECHO}/{method}"
    if shape == "unary":
        return _text(channel.unary_unary(path)(_msg(request), metadata=metadata, timeout=timeout))
    if shape == "server-streaming":
        call = channel.unary_stream(path)(_msg(request), metadata=metadata, timeout=timeout)
        return [_text(m) for m in call]
    if shape == "client-streaming":
        stub = channel.stream_unary(path)
        return _text(stub(iter(_msg(r) for r in request), metadata=metadata, timeout=timeout))
    stub = channel.stream_stream(path)
    call = stub(iter(_msg(r) for r in request), metadata=metadata, timeout=timeout)
    return [_text(m) for m in call]


@pytest.fixture
def direct(lab: Any) -> Iterator[grpc.Channel]:
    channel = grpc.insecure_channel(lab.upstreams["public-a"][0].address)
    yield channel
    channel.close()


@pytest.mark.parametrize("shape", list(SHAPES))
def test_without_a_deadline_a_slow_call_answers_the_same_direct_and_through_default_routes(
    lab: Any, direct: grpc.Channel, shape: str
) -> None:
    defaults_for_echo(lab)
    started = time.monotonic()
    straight = shaped_call(direct, shape, None, None)
    through = shaped_call(lab.channel, shape, auth(), None)
    assert time.monotonic() - started >= 2 * SLOW  # both really waited for the upstream
    if shape == "unary":  # the answer names the upstream that served it
        assert straight.split(":", 1)[1] == through.split(":", 1)[1] == f"sleep:{SLOW}"
    else:
        assert straight == through == SHAPES[shape][2]


def test_a_server_stream_is_not_cut_by_the_per_try_timeout_once_it_answers(lab: Any) -> None:
    reconfigure(lab, per_try_timeout_s=0.5)
    split = lab.channel.unary_stream(f"/{ECHO}/Split")
    answered = [_text(m) for m in split(_msg(f"a,sleep:{SLOW},b"), metadata=auth())]
    assert answered == ["a", "b"]


def test_a_server_stream_that_does_not_start_in_time_is_retried_then_fails_unavailable(
    lab: Any,
) -> None:
    reconfigure(lab, per_try_timeout_s=0.3, max_attempts=2)
    before = lab.echo_calls("Split")
    split = lab.channel.unary_stream(f"/{ECHO}/Split")
    with pytest.raises(grpc.RpcError) as caught:
        list(split(_msg(f"sleep:{SLOW},a"), metadata=auth(), timeout=10))
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "no first response within the per-try timeout" in (caught.value.details() or "")
    assert lab.echo_calls("Split") - before >= 2  # the attempt was retried


def test_a_per_try_timeout_never_cuts_a_call_that_cannot_be_retried(lab: Any) -> None:
    reconfigure(lab, per_try_timeout_s=0.3)
    write = lab.channel.unary_unary(f"/{ECHO}/Write")  # no idempotency level: one attempt
    assert _text(write(_msg("sleep:1"), metadata=auth())).endswith(":sleep:1")


@pytest.mark.parametrize("shape", ["unary", "bidi-streaming"])
def test_a_route_timeout_bounds_the_whole_call_of_any_shape(lab: Any, shape: str) -> None:
    reconfigure(lab, timeout_s=0.5, per_try_timeout_s=None)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        shaped_call(lab.channel, shape, auth(), None)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "route echo" in (caught.value.details() or "")
    assert time.monotonic() - started < SLOW


def test_the_callers_deadline_wins_over_a_longer_route_timeout(lab: Any) -> None:
    reconfigure(lab, timeout_s=10.0)
    unary = lab.channel.unary_unary(f"/{ECHO}/Unary")
    with pytest.raises(grpc.RpcError) as caught:
        unary(_msg(f"sleep:{SLOW}"), metadata=auth(), timeout=0.3)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "route" not in (caught.value.details() or "")


@pytest.mark.parametrize(("retry_on", "attempts"), [(["UNAVAILABLE"], 1), (["INTERNAL"], 3)])
def test_retry_on_is_the_routes_own(lab: Any, retry_on: list[str], attempts: int) -> None:
    reconfigure(lab, retry_on=retry_on, clusters=["public-a"])
    before = lab.echo_calls("Unary")
    unary = lab.channel.unary_unary(f"/{ECHO}/Unary")
    with pytest.raises(grpc.RpcError) as caught:
        unary(_msg("fail:INTERNAL"), metadata=auth(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert lab.echo_calls("Unary") - before == attempts


def test_an_upstream_without_health_service_serves_and_is_still_ejected_when_dead(
    lab: Any,
) -> None:
    """A team's existing service (no grpc.health.v1) behind a `health_check: none` cluster
    with its own outlier settings: it serves; once dead, one failure ejects it (the cluster's
    own consecutive_failures 1, not the gateway's 3)."""
    echo = Echo("bare")

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        echo.binding().add_to_server(server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = lab.loop.run(start())
    try:
        config = lab.config_holder[0]
        for kind, should_serve in (("grpc_health", False), ("none", True)):
            bare = ClusterConfig(
                name="bare",
                zone="public-a",
                zone_kind=ZoneKind.PUBLIC,
                endpoints=[Endpoint(host="127.0.0.1", port=port)],
                health_check=kind,
                outlier=OutlierConfig(
                    consecutive_failures=1, base_ejection_s=30, max_ejection_percent=100
                ),
            )
            routes = [
                r.model_copy(update={"clusters": ["bare"], "max_attempts": 1})
                if r.name == "echo"
                else r
                for r in config.routes
            ]
            lab.config_holder[0] = config.model_copy(
                update={"clusters": [*config.clusters, bare], "routes": routes}
            )
            stub = gateway_admin_pb2_grpc.GatewayAdminServiceStub(lab.channel)
            stub.ReloadConfig(pb.ReloadConfigRequest(), metadata=auth())
            # grpc_health: the first check finds no health service and marks it unhealthy;
            # none: nothing checks it, it stays as it started (healthy)
            endpoint = lab.runtime.gateway.snapshot.clusters["bare"].endpoints[0]
            deadline = time.monotonic() + 10
            while endpoint.healthy != should_serve and time.monotonic() < deadline:
                time.sleep(0.02)
            unary = lab.channel.unary_unary(f"/{ECHO}/Unary")
            if not should_serve:  # marked unhealthy: no endpoint to try
                with pytest.raises(grpc.RpcError) as caught:
                    unary(_msg("hi"), metadata=auth(), timeout=5)
                assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
                continue
            assert _text(unary(_msg("hi"), metadata=auth(), timeout=5)) == "bare:hi"
        ejections = lab.counter("ejections")
        lab.loop.run(server.stop(0))
        with pytest.raises(grpc.RpcError):
            unary(_msg("hi"), metadata=auth(), timeout=5)
        assert lab.counter("ejections") == ejections + 1
        endpoint = lab.runtime.gateway.snapshot.clusters["bare"].endpoints[0]
        assert endpoint.ejected(time.monotonic())
        assert endpoint.healthy  # no active check ever marked it down: ejection did
    finally:
        lab.loop.run(server.stop(0))
