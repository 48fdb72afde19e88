"""Gateway decisions, tested without a network: routing (property-based), balancing,
ejection, retry budget, tokens, rate limits and the degraded answer."""

from __future__ import annotations

import random
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.ads.v1 import ads_pb2
from isthmus.options.v1 import options_pb2
from services.adpolicy import parse_rules
from services.contract.descriptors import MethodInfo
from services.core.errors import Unauthenticated
from services.gateway.auth import TokenBucket, is_allowed, issue_token, verify_token
from services.gateway.balancer import EndpointState, RetryBudget, pick, record_outcome
from services.gateway.config import (
    CallerConfig,
    ClusterConfig,
    FallbackName,
    GatewayConfig,
    Outcome,
    OutlierConfig,
    RetryBudgetConfig,
    RouteConfig,
    RouteMatch,
    from_topology,
)
from services.gateway.degraded import bid_only_ranking
from services.gateway.fallbacks import FALLBACKS
from services.gateway.routing import RouteTable, RoutingError, build_route_table
from services.topology.model import Endpoint, Topology, ZoneKind

SERVICES = ["a.v1.S", "a.v1.T", "b.v1.U"]
SENS = [
    options_pb2.SENSITIVITY_PUBLIC,
    options_pb2.SENSITIVITY_SENSITIVE,
    options_pb2.SENSITIVITY_UNSPECIFIED,
]


def method(service: str, name: str, sensitivity: int) -> MethodInfo:
    return MethodInfo(
        f"/{service}/{name}", service, name, "x.In", "x.Out", sensitivity, 2, False, False
    )


methods_st = st.lists(
    st.tuples(
        st.sampled_from(SERVICES), st.sampled_from(["M1", "M2", "M3"]), st.sampled_from(SENS)
    ),
    min_size=1,
    max_size=9,
    unique_by=lambda t: (t[0], t[1]),
).map(lambda ms: {m.path: m for m in (method(*t) for t in ms)})

clusters_st = st.lists(st.sampled_from([ZoneKind.PRIVATE, ZoneKind.PUBLIC]), min_size=1, max_size=5)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[GatewayConfig, dict[str, MethodInfo], list[list[bool]]]:
    methods = draw(methods_st)
    kinds = draw(clusters_st)
    clusters = [
        ClusterConfig(
            name=f"c{i}",
            zone=f"z{i}",
            zone_kind=k,
            endpoints=[
                Endpoint(host="127.0.0.1", port=1000 + 10 * i + j)
                for j in range(draw(st.integers(1, 3)))
            ],
        )
        for i, k in enumerate(kinds)
    ]
    names = [c.name for c in clusters]
    routes = []
    for r in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["method", "service", "prefix"]))
        target = draw(st.sampled_from(list(methods.values())))
        match = {
            "method": RouteMatch(method=target.path),
            "service": RouteMatch(service=target.service),
            "prefix": RouteMatch(prefix=draw(st.sampled_from(["/", "/a.", "/b."]))),
        }[how]
        routes.append(
            RouteConfig(
                name=f"r{r}",
                match=match,
                clusters=draw(
                    st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)
                ),
            )
        )
    health = [[draw(st.booleans()) for _ in c.endpoints] for c in clusters]
    return GatewayConfig(clusters=clusters, routes=routes), methods, health


def sent_to(table: RouteTable, m: MethodInfo, health: list[list[bool]], seed: int) -> list[str]:
    """Every cluster an attempt sequence would reach (all clusters in failover order)."""
    route = table.route_for(m.path)
    if route is None:
        return []
    reached = []
    rng = random.Random(seed)
    for cluster in table.eligible_clusters(route, m):
        index = int(cluster.name[1:])
        states = [
            EndpointState(e.address, healthy=h)
            for e, h in zip(cluster.endpoints, health[index], strict=True)
        ]
        if pick(states, 0.0, rng, set()) is not None:
            reached.append(cluster.name)
    return reached


@settings(max_examples=300, deadline=None)
@given(scenario(), st.integers(0, 2**16))
def test_sensitive_calls_never_reach_a_public_cluster(
    case: tuple[GatewayConfig, dict[str, MethodInfo], list[list[bool]]], seed: int
) -> None:
    config, methods, health = case
    kinds = {c.name: c.zone_kind for c in config.clusters}
    # Even a table that skipped validation (whatever the config says) filters at call time.
    raw = RouteTable(tuple(config.routes), {c.name: c for c in config.clusters}, methods)
    for m in methods.values():
        for name in sent_to(raw, m, health, seed):
            assert m.is_public or kinds[name] is ZoneKind.PRIVATE
    try:
        build_route_table(config, methods)
    except RoutingError as exc:
        rejected = str(exc)
    else:
        rejected = ""
    if rejected:
        assert "non-PUBLIC" in rejected
        return
    for m in methods.values():
        route = raw.route_for(m.path)
        if route is not None and not m.is_public:
            assert all(kinds[c] is ZoneKind.PRIVATE for c in route.clusters)


def test_loading_a_sensitive_route_to_public_is_rejected() -> None:
    m = method("a.v1.S", "M1", options_pb2.SENSITIVITY_SENSITIVE)
    config = GatewayConfig(
        clusters=[
            ClusterConfig(
                name="pub",
                zone="p",
                zone_kind=ZoneKind.PUBLIC,
                endpoints=[Endpoint(host="127.0.0.1", port=1)],
            )
        ],
        routes=[RouteConfig(name="all", match=RouteMatch(prefix="/"), clusters=["pub"])],
    )
    with pytest.raises(RoutingError, match=r"route all sends non-PUBLIC /a\.v1\.S/M1 to public"):
        build_route_table(config, {m.path: m})


def test_p2c_prefers_fewer_in_flight_and_skips_unavailable() -> None:
    rng = random.Random(1)
    busy, idle = EndpointState("a", in_flight=10), EndpointState("b", in_flight=0)
    down = EndpointState("c", healthy=False)
    picks = {pick([busy, idle, down], 0.0, rng, set()).address for _ in range(50)}  # type: ignore[union-attr]
    assert "c" not in picks  # unhealthy endpoints are never chosen
    assert sum(pick([busy, idle], 0.0, rng, set()).address == "b" for _ in range(50)) == 50  # type: ignore[union-attr]
    assert pick([down], 0.0, rng, set()) is None
    assert pick([busy, idle], 0.0, rng, {"b"}) is busy


def test_ejection_backs_off_and_respects_the_cap() -> None:
    config = OutlierConfig(consecutive_failures=2, base_ejection_s=1, max_ejection_percent=34)
    eps = [EndpointState(str(i)) for i in range(3)]
    assert not record_outcome(eps, eps[0], Outcome.FAILURE, 0.0, config)
    assert record_outcome(eps, eps[0], Outcome.FAILURE, 0.0, config)
    assert eps[0].ejected_until == 1.0
    # A second endpoint may not be ejected while the first is: 34% of 3 allows one.
    record_outcome(eps, eps[1], Outcome.FAILURE, 0.5, config)
    assert not record_outcome(eps, eps[1], Outcome.FAILURE, 0.5, config)
    # After the first ejection ends, failing again doubles its ejection.
    record_outcome(eps, eps[0], Outcome.FAILURE, 2.0, config)
    assert record_outcome(eps, eps[0], Outcome.FAILURE, 2.0, config)
    assert eps[0].ejected_until == 4.0
    assert not record_outcome(eps, eps[2], Outcome.NEUTRAL, 2.0, config)


def test_thirty_percent_loss_can_be_ejected_with_the_default_cap() -> None:
    config = OutlierConfig(consecutive_failures=1)
    eps = [EndpointState(str(i)) for i in range(10)]
    ejected = sum(record_outcome(eps, e, Outcome.FAILURE, 0.0, config) for e in eps[:3])
    assert ejected == 3  # Envoy's 10% default would eject only one


def test_retry_budget() -> None:
    budget = RetryBudget(RetryBudgetConfig(budget_percent=20, min_retry_concurrency=2))
    budget.active = 100
    budget.retries_active = 19
    assert budget.may_retry()
    budget.retries_active = 20
    assert not budget.may_retry()
    budget.active, budget.retries_active = 1, 1
    assert budget.may_retry()  # the floor
    assert 0 <= budget.backoff_s(3, random.Random(0)) <= 0.04


def test_tokens_and_authorization() -> None:
    key = b"k" * 32
    assert verify_token(issue_token(key, "svc", 200), key, 100) == "svc"
    with pytest.raises(Unauthenticated, match="expired"):
        verify_token(issue_token(key, "svc", 100), key, 100)
    caller = CallerConfig(name="x", allow=["/a.v1.S/*", "/b.v1.U/M1"])
    assert is_allowed(caller, "/a.v1.S/M9")
    assert is_allowed(caller, "/b.v1.U/M1")
    assert not is_allowed(caller, "/b.v1.U/M2")


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate_per_s=2, burst=2)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.5)  # one token back after half a second
    assert not bucket.take(0.5)


def test_degraded_ranking_is_by_bid_and_compliant() -> None:
    request = ads_pb2.RankRequest(
        request_id="r",
        context=ads_pb2.RankContext(slot_count=5, age_band=ads_pb2.AGE_BAND_ADULT),
        candidates=[
            ads_pb2.Candidate(ad_id="w", cpc_bid_micros=5, categories=["alcohol"]),
            ads_pb2.Candidate(ad_id="x", cpc_bid_micros=7),
        ],
        max_results=1,
    )
    rules = parse_rules(
        "rules:\n - {name: age, kind: compliance, priority: 9, categories: [alcohol]}"
    )
    adult = bid_only_ranking(request, rules)
    assert [a.ad_id for a in adult.ads] == ["x"]
    request.context.age_band = ads_pb2.AGE_BAND_UNSPECIFIED
    request.max_results = 0
    unknown_age = bid_only_ranking(request, rules)
    assert [a.ad_id for a in unknown_age.ads] == ["x"]
    assert [(e.ad_id, e.rule) for e in unknown_age.exclusions] == [("w", "age")]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "unreadable"),
        ("rules: [\n", "rules file"),
        ("rules:\n - {name: a, kind: teleport, priority: 1}\n", "kind"),
        (
            "rules:\n"
            " - {name: kids, kind: compliance, priority: 10, categories: [toys-18]}\n"
            " - {name: vip, kind: allow, priority: 20, match: {advertisers: [v]}}\n",
            "contradictory",
        ),
    ],
)
def test_a_config_with_a_broken_rules_file_is_refused_naming_the_file(
    tmp_path: Path, text: str | None, reason: str
) -> None:
    path = tmp_path / "broken-rules.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match=reason) as caught:
        GatewayConfig(clusters=[], routes=[], rules_file=path)
    assert str(path) in str(caught.value)


def test_every_fallback_name_has_a_hook() -> None:
    assert set(get_args(FallbackName)) - {"none"} == set(FALLBACKS)


def test_the_rank_route_from_the_topology_falls_back_to_the_bid_only_answer() -> None:
    topology = Topology.model_validate(
        {
            "name": "test",
            "gateway": {"listen": {"host": "127.0.0.1", "port": 0}},
            "zones": [
                {"name": "private", "kind": "private"},
                {
                    "name": "public-a",
                    "kind": "public",
                    "services": [
                        {
                            "name": "ads-a",
                            "kind": "ads",
                            "endpoints": [{"host": "127.0.0.1", "port": 1}],
                        },
                        {
                            "name": "events-a",
                            "kind": "events",
                            "endpoints": [{"host": "127.0.0.1", "port": 2}],
                        },
                    ],
                },
            ],
        }
    )
    fallbacks = {r.name: r.fallback for r in from_topology(topology).routes}
    assert fallbacks == {"AdService": "ads_bid_only", "EventService": "none"}


def test_a_fallback_only_answers_its_own_method() -> None:
    rank = method("isthmus.ads.v1.AdService", "Rank", options_pb2.SENSITIVITY_PUBLIC)
    other = method("isthmus.ads.v1.AdService", "Other", options_pb2.SENSITIVITY_PUBLIC)
    pub = ClusterConfig(
        name="pub",
        zone="p",
        zone_kind=ZoneKind.PUBLIC,
        endpoints=[Endpoint(host="127.0.0.1", port=1)],
    )
    service = RouteConfig(
        name="ads",
        match=RouteMatch(service="isthmus.ads.v1.AdService"),
        clusters=["pub"],
        fallback="ads_bid_only",
    )
    table = build_route_table(
        GatewayConfig(clusters=[pub], routes=[service]), {m.path: m for m in (rank, other)}
    )
    assert table.fallback_for(service, rank) == "ads_bid_only"
    assert table.fallback_for(service, other) is None
    wrong = service.model_copy(update={"match": RouteMatch(method=other.path)})
    with pytest.raises(RoutingError, match="fallback ads_bid_only answers only"):
        build_route_table(GatewayConfig(clusters=[pub], routes=[wrong]), {other.path: other})


def test_the_old_degraded_fallback_key_says_what_replaced_it() -> None:
    with pytest.raises(ValueError, match="fallback: ads_bid_only"):
        RouteConfig.model_validate(
            {"name": "r", "match": {"prefix": "/"}, "clusters": ["c"], "degraded_fallback": True}
        )
