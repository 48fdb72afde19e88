"""AdService on real Ray Serve: Rank over gRPC (direct ingress and Serve's proxy), autoscaling
up under load and down after it, and a model swap under load that fails no call."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_status import rpc_status

from isthmus.ads.v1 import ads_pb2_grpc
from services.models.registry import ModelRegistry
from tests.support.ads_zone import AdsZoneProcess, BalancedLoad, rank_request, start_ads_zone
from tests.support.ctr import publish_model

CONFIG = """
registry_dir: {registry}
features_dir: null
refresh_interval_s: 0.5
replica_num_cpus: 0.5
drain_period_s: 3
autoscaling:
  min_replicas: 1
  max_replicas: 3
  target_ongoing_requests: 1
  upscale_delay_s: 1
  downscale_delay_s: 6
  look_back_period_s: 3
"""


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdsZoneProcess]:
    workdir = tmp_path_factory.mktemp("ads-zone")
    registry = workdir / "models"
    publish_model(registry, seed=1)
    publish_model(registry, seed=2, current=False)
    process = start_ads_zone(workdir, CONFIG.format(registry=registry))
    try:
        process.wait_endpoints(1)
        yield process
    finally:
        code = process.stop()
        assert code == 0, f"ads zone exited with {code}; see {workdir / 'ads-zone.log'}"


def test_rank_over_grpc_direct_ingress_and_proxy(zone: AdsZoneProcess) -> None:
    registry = ModelRegistry(Path(zone.endpoints_file).parents[1] / "models")
    request = rank_request(100, "first", user="u1")
    request.candidates[0].categories.append("alcohol")  # the shipped compliance rule
    direct = ads_pb2_grpc.AdServiceStub(grpc.insecure_channel(zone.endpoints()[0]))
    answer = direct.Rank(request, timeout=10)
    assert answer.request_id == "first"
    assert answer.model_version == registry.current()
    assert [a.position for a in answer.ads] == [1, 2, 3, 4, 5]
    assert [e.rule for e in answer.exclusions if e.ad_id == "ad-0"] == ["age-restricted-categories"]
    ecpm = [a.ecpm_micros for a in answer.ads]
    assert ecpm == sorted(ecpm, reverse=True)
    assert all(0 < a.pctr < 1 for a in answer.ads)

    proxy = ads_pb2_grpc.AdServiceStub(grpc.insecure_channel(f"127.0.0.1:{zone.grpc_port}"))
    via_proxy = proxy.Rank(request, metadata=(("application", "ads"),), timeout=10)
    assert via_proxy.ads == answer.ads


def test_malformed_rank_gets_invalid_argument_with_field_details(zone: AdsZoneProcess) -> None:
    stub = ads_pb2_grpc.AdServiceStub(grpc.insecure_channel(zone.endpoints()[0]))
    bad = rank_request(3, "bad id with spaces")
    bad.candidates[1].cpc_bid_micros = 0
    with pytest.raises(grpc.RpcError) as caught:
        stub.Rank(bad, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    from google.rpc import error_details_pb2

    details = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(details)
    assert {v.field for v in details.field_violations} >= {
        "request_id",
        "candidates[1].cpc_bid_micros",
    }
    # The replica is still serving.
    assert stub.Rank(rank_request(3, "after"), timeout=10).request_id == "after"


def test_scales_up_under_load_swaps_model_without_failures_and_scales_down(
    zone: AdsZoneProcess,
) -> None:
    registry = ModelRegistry(Path(zone.endpoints_file).parents[1] / "models")
    first, second = registry.versions()
    assert zone.running_replicas() == 1
    replicas: list[tuple[float, int]] = []
    started = time.monotonic()

    def sample() -> int:
        count = zone.running_replicas()
        replicas.append((round(time.monotonic() - started, 1), count))
        return count

    # Heavy requests (500 candidates) so the replica, not this client, is the bottleneck.
    with BalancedLoad(zone, threads=12, candidates=500) as load:
        deadline = time.monotonic() + 90
        while sample() < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert max(c for _, c in replicas) >= 2, f"did not scale up: {replicas}"
        zone.wait_endpoints(2, timeout_s=30)
        registry.set_current(second)  # hot swap while every replica is busy
        deadline = time.monotonic() + 30
        while load.stats.versions[second] < 200 and time.monotonic() < deadline:
            sample()
            time.sleep(0.5)
    stats = load.stats
    assert not stats.errors, f"failed calls during scale-up and swap: {dict(stats.errors)}"
    assert stats.versions[first] > 0, stats.versions
    assert stats.versions[second] >= 200, stats.versions

    deadline = time.monotonic() + 90
    while sample() > 1 and time.monotonic() < deadline:
        time.sleep(1)
    assert replicas[-1][1] == 1, f"did not scale down after load: {replicas}"
    registry.set_current(first)
