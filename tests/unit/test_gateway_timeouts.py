"""The gateway's timeout decisions (pure, on a fake clock) and the per-route / per-cluster
settings of its config."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.gateway.config import (
    CircuitBreakerConfig,
    ClusterConfig,
    ConnectionConfig,
    GatewayConfig,
    OutlierConfig,
    RouteConfig,
    RouteMatch,
    from_topology,
)
from services.gateway.timeouts import (
    AttemptTimeouts,
    CallClock,
    CallExpired,
    attempt_timeouts,
    expiry_message,
)
from services.gateway.upstream import ClusterRuntime, channel_options
from services.topology import load_topology
from services.topology.model import Endpoint, ZoneKind

pytestmark = pytest.mark.unit
NOW = 100.0


def clock(caller_s: float | None = None, route_s: float | None = None) -> CallClock:
    return CallClock.start(NOW, caller_s, route_s)


def test_with_no_deadline_and_default_route_settings_nothing_bounds_an_attempt() -> None:
    for streaming in (False, True):
        assert attempt_timeouts(clock(), NOW, None, True, streaming) == AttemptTimeouts(None)


def test_a_per_try_timeout_applies_only_where_a_retry_can_follow() -> None:
    assert attempt_timeouts(clock(), NOW, 1.0, True, False) == AttemptTimeouts(1.0, None, True)
    assert attempt_timeouts(clock(), NOW, 1.0, False, False) == AttemptTimeouts(None)
    assert attempt_timeouts(clock(5.0), NOW, 1.0, False, False) == AttemptTimeouts(5.0)


def test_a_server_stream_gets_the_per_try_timeout_only_for_its_first_response() -> None:
    bounds = attempt_timeouts(clock(), NOW, 1.0, True, True)
    assert bounds == AttemptTimeouts(None, first_response_s=1.0)
    bounds = attempt_timeouts(clock(5.0), NOW, 1.0, True, True)
    assert bounds == AttemptTimeouts(5.0, first_response_s=1.0)


def test_the_shorter_of_the_callers_deadline_and_the_route_timeout_wins() -> None:
    assert attempt_timeouts(clock(2.0, 5.0), NOW + 1, None, True, False).rpc_s == 1.0
    assert attempt_timeouts(clock(9.0, 3.0), NOW + 1, None, True, False).rpc_s == 2.0
    # what is left of the call, when shorter than the per-try timeout, is not a per-try bound
    assert attempt_timeouts(clock(0.5), NOW, 1.0, True, False) == AttemptTimeouts(0.5)


def test_an_expired_call_starts_no_attempt_and_names_what_ended_it() -> None:
    route_bound = clock(10.0, 1.0)
    with pytest.raises(CallExpired):
        attempt_timeouts(route_bound, NOW + 1.0, None, True, False)
    assert route_bound.route_binds()
    assert expiry_message(route_bound, "echo") == (
        "route echo: no answer within its 1s route timeout"
    )
    caller_bound = clock(1.0, 10.0)
    assert not caller_bound.route_binds()
    assert "route" not in expiry_message(caller_bound, "echo")


def test_a_reserve_moves_both_bounds_and_none_stays_none() -> None:
    kept = clock(1.0, 2.0).reserve(0.25)
    assert (kept.caller_deadline, kept.route_deadline) == (NOW + 0.75, NOW + 1.75)
    assert clock().reserve(0.25).deadline is None


def test_route_defaults_set_no_timeouts_and_todays_retry_codes() -> None:
    route = RouteConfig(name="r", match=RouteMatch(service="a.B"), clusters=["c"])
    assert route.timeout_s is None
    assert route.per_try_timeout_s is None
    assert "UNAVAILABLE" in route.retry_on
    assert "CANCELLED" not in route.retry_on


@pytest.mark.parametrize("code", ["OK", "CANCELLED", "unavailable", "NOT_A_CODE"])
def test_retry_on_refuses_codes_that_must_not_be_retried_or_do_not_exist(code: str) -> None:
    with pytest.raises(ValidationError, match="retry_on"):
        RouteConfig(name="r", match=RouteMatch(service="a.B"), clusters=["c"], retry_on=[code])


def test_a_cluster_carries_its_own_settings_and_falls_back_to_the_gateways() -> None:
    shipped = from_topology(load_topology())
    own = ClusterConfig(
        name="team",
        zone="private",
        zone_kind=ZoneKind.PRIVATE,
        endpoints=[Endpoint(host="127.0.0.1", port=1)],
        health_check="none",
        outlier=OutlierConfig(consecutive_failures=1),
        circuit_breaker=CircuitBreakerConfig(max_requests=4),
        connection=ConnectionConfig(connect_timeout_s=5.0),
    )
    config = GatewayConfig.model_validate(
        {**shipped.model_dump(), "clusters": [*shipped.model_dump()["clusters"], own]}
    )
    settings = config.settings_of(config.cluster("team"))
    assert settings.outlier.consecutive_failures == 1
    assert settings.circuit_breaker.max_requests == 4
    assert settings.health == config.health_check  # not given: the gateway's
    assert settings.connection.connect_timeout_s == 5.0
    assert settings.connection.backoff_max_s == config.connection.backoff_max_s
    other = config.settings_of(config.clusters[0])
    assert other.outlier == config.outlier
    assert other.circuit_breaker == config.circuit_breaker
    assert other.connection == config.connection


def test_channels_reconnect_on_the_clusters_terms_not_grpcs_defaults() -> None:
    """gRPC's defaults (20 s connect deadline, back-off to 120 s) kept a channel away from a
    zone for 7-8.5 s after a 25 s link cut; the cluster's settings bound both."""
    options = dict(channel_options(ConnectionConfig(connect_timeout_s=1.5, backoff_max_s=0.8)))
    assert options["grpc.min_reconnect_backoff_ms"] == 1500  # gRPC's connect deadline
    assert options["grpc.initial_reconnect_backoff_ms"] == 100
    assert options["grpc.max_reconnect_backoff_ms"] == 800
    assert options["grpc.enable_retries"] == 0  # the gateway's own options stay


def test_a_backoff_ceiling_below_its_start_is_refused() -> None:
    with pytest.raises(ValidationError, match="backoff_max_s"):
        ConnectionConfig(backoff_initial_s=2.0, backoff_max_s=1.0)


def test_a_server_stream_with_less_time_left_than_a_try_is_bounded_by_the_call_alone() -> None:
    """Its end is the call's deadline (DEADLINE_EXCEEDED), never a per-try UNAVAILABLE."""
    assert attempt_timeouts(clock(0.5), NOW, 1.0, True, True) == AttemptTimeouts(0.5)


@pytest.mark.parametrize(("kind", "healthy"), [("none", True), ("grpc_health", False)])
def test_a_rebuilt_cluster_keeps_health_only_from_a_runtime_that_checked_the_same_way(
    tmp_path: Path, kind: str, healthy: bool
) -> None:
    """A reload that turns active checks off must not leave endpoints marked down by the old
    checks (nothing would ever mark them up again)."""
    endpoints = tmp_path / "team.endpoints.json"
    endpoints.write_text(
        json.dumps(
            {
                "service": "team",
                "generation": 1,
                "updated_unix_s": 1.0,
                "endpoints": [{"host": "127.0.0.1", "port": 7}],
            }
        )
    )
    shipped = from_topology(load_topology())
    checked = ClusterConfig(
        name="team", zone="private", zone_kind=ZoneKind.PRIVATE, endpoints_file=endpoints
    )

    async def rebuild() -> bool:
        old = ClusterRuntime(checked, shipped.upstream_tls, shipped.settings_of(checked))
        old.seed(None)
        old.endpoints[0].healthy = False  # the old checks marked it down
        new_config = checked.model_copy(update={"health_check": kind})
        new = ClusterRuntime(new_config, shipped.upstream_tls, shipped.settings_of(new_config))
        new.seed(old)
        answer = new.endpoints[0].healthy
        await old.close()
        await new.close()
        return answer

    loop = asyncio.new_event_loop()  # not asyncio.run: it would unset the thread's loop
    try:
        assert loop.run_until_complete(rebuild()) is healthy
    finally:
        loop.close()
