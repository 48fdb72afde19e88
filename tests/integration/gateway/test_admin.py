"""GatewayAdminService: routes, cluster health, drain and reload without losing calls."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2

from isthmus.gateway.v1 import gateway_admin_pb2 as pb
from isthmus.gateway.v1 import gateway_admin_pb2_grpc
from services.gateway.config import RouteConfig
from tests.integration.gateway.conftest import auth, lab_config
from tests.integration.gateway.upstreams import ECHO, _msg, _text


def admin(lab: Any) -> gateway_admin_pb2_grpc.GatewayAdminServiceStub:
    return gateway_admin_pb2_grpc.GatewayAdminServiceStub(lab.channel)


def background_calls(lab: Any, text: str, n: int) -> tuple[list[threading.Thread], list[Any]]:
    results: list[Any] = []
    stub = lab.channel.unary_unary(f"/{ECHO}/Unary")

    def one() -> None:
        try:
            results.append(_text(stub(_msg(text), metadata=auth(), timeout=10)))
        except grpc.RpcError as exc:
            results.append(exc.code())

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


def test_list_routes_and_cluster_health(lab: Any) -> None:
    routes = admin(lab).ListRoutes(pb.ListRoutesRequest(), metadata=auth())
    assert [r.name for r in routes.routes] == ["secret", "echo", "rank"]
    assert routes.routes[2].degraded_fallback
    assert len(routes.config_version) == 16
    health = admin(lab).GetClusterHealth(pb.GetClusterHealthRequest(), metadata=auth())
    by_name = {c.name: c for c in health.clusters}
    assert by_name["private"].zone_kind == pb.ZONE_KIND_PRIVATE
    assert len(by_name["public-a"].endpoints) == 3
    lab.kill(lab.upstreams["public-a"][1])
    lab.wait_healthy_count("public-a", 2)
    one = admin(lab).GetClusterHealth(
        pb.GetClusterHealthRequest(cluster="public-a"), metadata=auth()
    )
    states = [e.state for e in one.clusters[0].endpoints]
    assert states.count(pb.ENDPOINT_STATE_UNHEALTHY) == 1


def test_admin_needs_authorization(lab: Any) -> None:
    with pytest.raises(grpc.RpcError) as err:
        admin(lab).ListRoutes(pb.ListRoutesRequest(), metadata=auth("reporting"))
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        admin(lab).ListRoutes(pb.ListRoutesRequest())
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_drain_waits_for_in_flight_calls_and_loses_none(lab: Any) -> None:
    threads, results = background_calls(lab, "sleep:0.5", 12)
    time.sleep(0.2)
    target = lab.upstreams["public-a"][0]
    reply = admin(lab).DrainEndpoint(
        pb.DrainEndpointRequest(
            cluster="public-a",
            address=target.address,
            wait_timeout=duration_pb2.Duration(seconds=5),
        ),
        metadata=auth(),
    )
    assert reply.endpoint.state == pb.ENDPOINT_STATE_DRAINED
    assert reply.in_flight_remaining == 0
    for t in threads:
        t.join()
    assert all(isinstance(r, str) for r in results), results
    before = target.echo.calls["Unary"]
    more_threads, more = background_calls(lab, "quick", 10)
    for t in more_threads:
        t.join()
    assert all(isinstance(r, str) for r in more), more
    assert target.echo.calls["Unary"] == before
    admin(lab).DrainEndpoint(
        pb.DrainEndpointRequest(cluster="public-a", address=target.address, undrain=True),
        metadata=auth(),
    )


def test_reload_swaps_routes_without_losing_in_flight_calls(lab: Any) -> None:
    threads, results = background_calls(lab, "sleep:0.5", 12)
    time.sleep(0.2)
    new = lab_config(lab.upstreams)
    routes = [
        r
        if r.name != "echo"
        else RouteConfig(name="echo", match=r.match, clusters=["public-b", "public-a"])
        for r in new.routes
    ]
    lab.config_holder[0] = new.model_copy(update={"routes": routes})
    dry = admin(lab).ReloadConfig(pb.ReloadConfigRequest(dry_run=True), metadata=auth())
    assert not dry.applied
    assert list(dry.changes) == ["route echo changed"]
    reply = admin(lab).ReloadConfig(pb.ReloadConfigRequest(), metadata=auth())
    assert reply.applied
    for t in threads:
        t.join()
    assert all(isinstance(r, str) and r.startswith("public-a") for r in results), results
    after = lab.channel.unary_unary(f"/{ECHO}/Unary")(_msg("z"), metadata=auth())
    assert _text(after).startswith("public-b")


def test_reload_of_an_invalid_config_changes_nothing(lab: Any) -> None:
    before = admin(lab).ListRoutes(pb.ListRoutesRequest(), metadata=auth()).config_version
    bad = lab_config(lab.upstreams)
    routes = [
        r
        if r.name != "secret"
        else RouteConfig(name="secret", match=r.match, clusters=["public-a"])
        for r in bad.routes
    ]
    lab.config_holder[0] = bad.model_copy(update={"routes": routes})
    with pytest.raises(grpc.RpcError) as err:
        admin(lab).ReloadConfig(pb.ReloadConfigRequest(), metadata=auth())
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "sends non-PUBLIC" in err.value.details()
    after = admin(lab).ListRoutes(pb.ListRoutesRequest(), metadata=auth()).config_version
    assert after == before


def test_circuit_breaker_limits_a_cluster_after_a_policy_reload(lab: Any) -> None:
    from services.gateway.config import CircuitBreakerConfig

    limited = lab_config(
        lab.upstreams, circuit_breaker=CircuitBreakerConfig(max_requests=2, max_pending=0)
    )
    lab.config_holder[0] = limited
    reply = admin(lab).ReloadConfig(pb.ReloadConfigRequest(), metadata=auth())
    assert "policies changed" in reply.changes
    results: list[Any] = []
    stub = lab.channel.unary_unary(f"/{ECHO}/Write")  # not retry-safe: no failover either

    def one() -> None:
        try:
            results.append(_text(stub(_msg("sleep:0.5"), metadata=auth(), timeout=10)))
        except grpc.RpcError as exc:
            results.append((exc.code(), exc.details()))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if not isinstance(r, str)]
    assert len(ok) == 2
    assert refused == [(grpc.StatusCode.UNAVAILABLE, "cluster public-a is at its limits")] * 6


def test_a_reloaded_retry_budget_applies_to_the_next_call(lab: Any) -> None:
    """The budget is the gateway's, not a cluster's: a reload that changes it must reach the
    next retry decision (it once only reported "policies changed")."""
    from services.gateway.config import RetryBudgetConfig

    unary = lab.channel.unary_unary(f"/{ECHO}/Unary")  # retry-safe
    before = lab.echo_calls("Unary")
    with pytest.raises(grpc.RpcError):
        unary(_msg("fail:UNAVAILABLE"), metadata=auth(), timeout=5)
    assert lab.echo_calls("Unary") - before > 1  # retried under the shipped budget

    lab.config_holder[0] = lab_config(
        lab.upstreams, retry_budget=RetryBudgetConfig(budget_percent=0, min_retry_concurrency=0)
    )
    reply = admin(lab).ReloadConfig(pb.ReloadConfigRequest(), metadata=auth())
    assert "policies changed" in reply.changes
    before = lab.echo_calls("Unary")
    with pytest.raises(grpc.RpcError) as err:
        unary(_msg("fail:UNAVAILABLE"), metadata=auth(), timeout=5)
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE
    assert lab.echo_calls("Unary") - before == 1  # one attempt: the budget allows no retry
