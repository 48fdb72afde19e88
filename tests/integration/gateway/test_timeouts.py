"""Timeouts as a caller sees them: the gateway's per-try timeout is a gateway timeout
(UNAVAILABLE), the caller's own deadline stays DEADLINE_EXCEEDED, and a route with a fallback
answers with it before the caller's deadline instead of running into it."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from isthmus.ads.v1 import ads_pb2, ads_pb2_grpc
from tests.integration.gateway.conftest import auth
from tests.integration.gateway.upstreams import ECHO, _msg

pytestmark = pytest.mark.integration


def test_a_per_try_timeout_fails_unavailable_while_the_caller_still_waits(lab: Any) -> None:
    secret = lab.channel.unary_unary(f"/{ECHO}/Secret")
    with pytest.raises(grpc.RpcError) as caught:
        secret(_msg("sleep:3"), metadata=auth(), timeout=6)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "per-try timeout" in (caught.value.details() or "")


def test_the_callers_own_deadline_stays_deadline_exceeded(lab: Any) -> None:
    secret = lab.channel.unary_unary(f"/{ECHO}/Secret")
    with pytest.raises(grpc.RpcError) as caught:
        secret(_msg("sleep:3"), metadata=auth(), timeout=0.4)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


def test_rank_falls_back_before_the_callers_deadline_when_every_zone_hangs(lab: Any) -> None:
    for group in ("public-a", "public-b"):
        for upstream in lab.upstreams[group]:
            upstream.ads.delay_s = 2.0
    stub = ads_pb2_grpc.AdServiceStub(lab.channel)
    request = ads_pb2.RankRequest(
        request_id="r",
        context=ads_pb2.RankContext(placement_id="p", slot_count=2),
        candidates=[
            ads_pb2.Candidate(ad_id="low", campaign_id="c", cpc_bid_micros=1),
            ads_pb2.Candidate(ad_id="high", campaign_id="c", cpc_bid_micros=9),
        ],
    )
    answer = stub.Rank(request, metadata=auth(), timeout=0.3)
    assert answer.degraded
    assert not answer.model_version
    assert [ad.ad_id for ad in answer.ads] == ["high", "low"]
