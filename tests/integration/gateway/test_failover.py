"""Failover with real upstreams killed under load."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest

from isthmus.ads.v1 import ads_pb2, ads_pb2_grpc
from isthmus.gateway.v1 import gateway_admin_pb2 as admin_pb
from isthmus.gateway.v1 import gateway_admin_pb2_grpc
from services.adpolicy import SHIPPED_RULES_FILE
from tests.integration.gateway.conftest import auth, lab_config
from tests.integration.gateway.upstreams import ECHO, _msg, _text


def load(lab: Any, method: str, seconds: float, during: Any = None) -> tuple[int, list[Any]]:
    """Run 8 callers for `seconds`; call `during()` after a third of it. Returns (ok, errors)."""
    ok, errors, lock = [0], [], threading.Lock()
    stop = threading.Event()
    stub = lab.channel.unary_unary(f"/{ECHO}/{method}")
    metadata = auth()

    def worker() -> None:
        while not stop.is_set():
            try:
                stub(_msg("x"), metadata=metadata, timeout=5)
                with lock:
                    ok[0] += 1
            except grpc.RpcError as exc:
                with lock:
                    errors.append((exc.code(), exc.details()))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(seconds / 3)
    if during is not None:
        during()
    time.sleep(seconds * 2 / 3)
    stop.set()
    for t in threads:
        t.join()
    return ok[0], errors


def test_killing_one_of_three_endpoints_fails_no_idempotent_call(lab: Any) -> None:
    victim = lab.upstreams["public-a"][0]
    ok, errors = load(lab, "Unary", 3.0, during=lambda: lab.kill(victim))
    assert errors == []
    assert ok > 100
    assert lab.counter("retries") >= 1  # the calls that hit the dying endpoint were retried
    lab.wait_healthy_count("public-a", 2)
    before = victim.echo.calls["Unary"]
    _, errors = load(lab, "Unary", 0.6)
    assert errors == []
    assert victim.echo.calls["Unary"] == before  # nothing more reached the dead endpoint


def test_losing_public_a_moves_traffic_to_public_b(lab: Any) -> None:
    def kill_zone() -> None:
        for upstream in lab.upstreams["public-a"]:
            lab.kill(upstream)

    ok, errors = load(lab, "Unary", 3.0, during=kill_zone)
    assert errors == []
    assert ok > 100
    b = lab.upstreams["public-b"][0]
    assert b.echo.calls["Unary"] > 20


def rank(lab: Any) -> ads_pb2.RankResponse:
    request = ads_pb2.RankRequest(
        request_id="r-1",
        context=ads_pb2.RankContext(placement_id="home", slot_count=2),
        candidates=[
            ads_pb2.Candidate(
                ad_id="beer", campaign_id="c1", cpc_bid_micros=900, categories=["alcohol"]
            ),
            ads_pb2.Candidate(ad_id="shoe", campaign_id="c2", cpc_bid_micros=500),
            ads_pb2.Candidate(ad_id="sock", campaign_id="c3", cpc_bid_micros=100),
            ads_pb2.Candidate(ad_id="hat", campaign_id="c4", cpc_bid_micros=300),
        ],
    )
    stub = ads_pb2_grpc.AdServiceStub(lab.channel)
    return stub.Rank(request, metadata=auth(), timeout=5)


def test_rank_fails_over_then_degrades_when_no_public_zone_is_up(lab: Any) -> None:
    assert rank(lab).model_version.startswith("public-a")
    for upstream in lab.upstreams["public-a"]:
        lab.kill(upstream)
    assert rank(lab).model_version == "public-b-0"
    lab.kill(lab.upstreams["public-b"][0])
    degraded = rank(lab)
    assert degraded.degraded
    assert degraded.degraded_reason == ads_pb2.DEGRADED_REASON_NO_MODEL_AVAILABLE
    assert [a.ad_id for a in degraded.ads] == ["shoe", "hat"]  # by bid, 2 slots
    # The ranking service's own compliance rule, from its rules file, named as it names it.
    assert [(e.ad_id, e.rule) for e in degraded.exclusions] == [
        ("beer", "age-restricted-categories")
    ]
    assert degraded.ads[0].ecpm_micros == 500_000
    assert lab.counter("degraded") == 1
    assert lab.counter("failovers") >= 2  # public-a -> public-b, twice
    assert lab.counter("attempts") >= 3
    attempts = lab.attempts_by()
    assert {m for _, m in attempts} == {"/isthmus.ads.v1.AdService/Rank"}
    assert {c for c, _ in attempts} == {"public-a", "public-b"}


def test_degraded_answers_follow_the_rules_file_across_reloads(lab: Any, tmp_path: Path) -> None:
    admin = gateway_admin_pb2_grpc.GatewayAdminServiceStub(lab.channel)
    rules = tmp_path / "rules.yaml"
    rules.write_text(SHIPPED_RULES_FILE.read_text())
    lab.config_holder[0] = lab_config(lab.upstreams, rules_file=rules)
    reply = admin.ReloadConfig(admin_pb.ReloadConfigRequest(), metadata=auth())
    assert list(reply.changes) == ["policies changed"]
    for zone in ("public-a", "public-b"):
        for upstream in lab.upstreams[zone]:
            lab.kill(upstream)
    assert [a.ad_id for a in rank(lab).ads] == ["shoe", "hat"]

    no_hats = "  - {name: no-hats, kind: exclude, priority: 300, match: {ads: [hat]}}\n"
    rules.write_text(SHIPPED_RULES_FILE.read_text() + no_hats)
    reply = admin.ReloadConfig(admin_pb.ReloadConfigRequest(), metadata=auth())
    assert reply.applied
    assert list(reply.changes) == ["fallback ads_bid_only changed"]
    newer = rank(lab)
    assert [a.ad_id for a in newer.ads] == ["shoe", "sock"]
    assert ("hat", "no-hats") in [(e.ad_id, e.rule) for e in newer.exclusions]

    rules.write_text("rules: [\n")  # broken after the config that names it was loaded
    with pytest.raises(grpc.RpcError) as err:
        admin.ReloadConfig(admin_pb.ReloadConfigRequest(), metadata=auth())
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert str(rules) in err.value.details()
    assert rank(lab) == newer  # the rules in force keep answering


def test_sensitive_calls_fail_closed_when_the_private_zone_is_down(lab: Any) -> None:
    secret = lab.channel.unary_unary(f"/{ECHO}/Secret")
    assert _text(secret(_msg("s"), metadata=auth())) == "private-0:s"
    lab.kill(lab.upstreams["private"][0])
    for _ in range(5):
        with pytest.raises(grpc.RpcError) as err:
            secret(_msg("s"), metadata=auth(), timeout=5)
        assert err.value.code() is grpc.StatusCode.UNAVAILABLE
    public_calls = sum(
        u.echo.calls["Secret"] for z in ("public-a", "public-b") for u in lab.upstreams[z]
    )
    assert public_calls == 0
    secret_attempts = {c for c, m in lab.attempts_by() if m.endswith("/Secret")}
    assert secret_attempts == {"private"}  # the gateway's own count agrees


def test_retries_never_duplicate_a_non_idempotent_call(lab: Any) -> None:
    write = lab.channel.unary_unary(f"/{ECHO}/Write")
    codes: Counter[Any] = Counter()
    for _ in range(30):
        try:
            write(_msg("fail:UNAVAILABLE"), metadata=auth(), timeout=5)
        except grpc.RpcError as exc:
            codes[exc.code()] += 1
    assert codes == {grpc.StatusCode.UNAVAILABLE: 30}
    assert lab.echo_calls("Write") == 30  # exactly one attempt each, no retry, no failover
    unary = lab.channel.unary_unary(f"/{ECHO}/Unary")
    before = lab.echo_calls("Unary")
    with pytest.raises(grpc.RpcError) as err:
        unary(_msg("fail:UNAVAILABLE"), metadata=auth(), timeout=5)
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE
    assert lab.echo_calls("Unary") - before > 1  # the retry-safe one was retried
    assert lab.counter("retries") == lab.echo_calls("Unary") - before - 1


def test_upstream_cancellation_is_retried_for_retry_safe_calls(lab: Any) -> None:
    """A stopping server cancels its calls; the caller did not cancel, so try elsewhere."""
    unary = lab.channel.unary_unary(f"/{ECHO}/Unary")
    before = lab.echo_calls("Unary")
    with pytest.raises(grpc.RpcError) as err:
        unary(_msg("fail:CANCELLED"), metadata=auth(), timeout=5)
    assert err.value.code() is grpc.StatusCode.CANCELLED
    assert lab.echo_calls("Unary") - before > 1
