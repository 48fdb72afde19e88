"""The ranking service without Ray: real ONNX models from the real training code, a real
registry on disk; validation, one ORT call per request, hot swap, canary, refusals."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from isthmus.ads.v1 import ads_pb2
from services.core.errors import InvalidArgument
from services.models.registry import ModelRegistry
from services.public.ads import ranking
from services.public.ads.config import AdsConfig
from services.public.ads.models import bucket
from services.public.ads.service import RankService
from tests.support import ads_zone
from tests.support.ctr import N_ITEMS, publish_model

RULES = "rules:\n - {name: age, kind: compliance, priority: 10, categories: [alcohol]}\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry template with two versions (v1 CURRENT, v2 not)."""
    root = tmp_path_factory.mktemp("registry")
    publish_model(root, seed=1)
    publish_model(root, seed=2, current=False)
    return root


@pytest.fixture
def service(tmp_path: Path, models: Path) -> RankService:
    shutil.copytree(models, tmp_path / "models")
    (tmp_path / "rules.yaml").write_text(RULES)
    config = AdsConfig(
        registry_dir=tmp_path / "models",
        rules_file=tmp_path / "rules.yaml",
        features_dir=None,
        base_dir=tmp_path,
    )
    return RankService(config)


def rank_request(n: int = 20, user: str = "user-1", request_id: str = "r1") -> ads_pb2.RankRequest:
    """The system tests' request, with ad-0 in a restricted category."""
    request = ads_zone.rank_request(n, request_id, user)
    request.candidates[0].categories[:] = ["alcohol"]
    for i, candidate in enumerate(request.candidates):
        candidate.item_id = str(i % N_ITEMS)  # items of the synthetic catalogue
    return request


def test_rank_scores_every_candidate_with_the_model_and_orders_by_ecpm(
    service: RankService,
) -> None:
    response = service.rank(rank_request())
    assert response.model_version == service.models.stable.version
    assert len(response.ads) == 5
    ecpms = [a.ecpm_micros for a in response.ads]
    assert ecpms == sorted(ecpms, reverse=True)
    # Nearly equal bids: the model's item features decide, so scores differ between items.
    assert len({round(a.pctr, 9) for a in response.ads}) > 1
    assert {e.ad_id: e.rule for e in response.exclusions} == {"ad-0": "age"}
    assert not response.degraded


def test_one_batch_of_requests_equals_requests_one_by_one(service: RankService) -> None:
    requests = [rank_request(request_id=f"r{i}", user=f"u{i}") for i in range(4)]
    requests.insert(2, ads_pb2.RankRequest(request_id="broken"))
    together = service.rank_many(requests)
    assert isinstance(together[2], InvalidArgument)
    for request, answer in zip(requests, together, strict=True):
        if request.request_id != "broken":
            assert answer == service.rank(request)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.ClearField("request_id"), "request_id"),
        (lambda r: r.ClearField("context"), "context"),
        (lambda r: setattr(r.context, "slot_count", 0), "context.slot_count"),
        (lambda r: setattr(r.context, "region_code", "fr"), "context.region_code"),
        (lambda r: r.ClearField("candidates"), "candidates"),
        (lambda r: setattr(r.candidates[3], "ad_id", "ad-1"), "candidates[3].ad_id"),
        (lambda r: setattr(r.candidates[2], "cpc_bid_micros", 0), "candidates[2].cpc_bid_micros"),
        (lambda r: r.candidates[1].categories.append("Bad Cat"), "candidates[1].categories[1]"),
        (lambda r: setattr(r, "max_results", 5000), "max_results"),
    ],
)
def test_malformed_requests_name_the_field(service: RankService, mutate, field: str) -> None:
    request = rank_request()
    mutate(request)
    with pytest.raises(InvalidArgument) as caught:
        service.rank(request)
    assert field in [v.field for v in caught.value.violations]


def test_too_many_candidates_is_refused() -> None:
    request = rank_request(n=30)
    with pytest.raises(InvalidArgument, match="1 to 25"):
        ranking.validate(request, max_candidates=25)


def test_hot_swap_serves_the_new_version_and_a_corrupt_one_is_refused(
    service: RankService,
) -> None:
    registry = ModelRegistry(service.config.registry_dir)
    first, second = registry.versions()
    assert service.rank(rank_request()).model_version == first
    registry.set_current(second)
    assert service.refresh()
    assert service.rank(rank_request()).model_version == second
    # Corrupt the first version's bytes, then point CURRENT back at it: refused, v2 stays.
    (registry.root / first / "model.onnx").write_bytes(b"not a model")
    registry.set_current(first)
    service.refresh()
    assert service.rank(rank_request()).model_version == second
    assert service.last_error is not None
    assert "checksum mismatch" in service.last_error


def test_a_broken_rules_file_is_refused_and_the_old_rules_stay(service: RankService) -> None:
    service.config.rules_file.write_text(
        "rules:\n - {name: a, kind: diversity, priority: 1, max_per_category: 1}\n"
        " - {name: b, kind: diversity, priority: 2, max_per_category: 2}\n"
    )
    service.refresh()
    assert [r.name for r in service.rules.rules] == ["age"]
    assert "contradictory" in (service.last_error or "")


def test_canary_split_is_by_weight_and_sticky_per_user(service: RankService) -> None:
    registry = ModelRegistry(service.config.registry_dir)
    stable, canary = registry.versions()
    registry.set_canary(canary, 0.3)
    service.refresh()
    seen = Counter(service.rank(rank_request(user=f"u{i}")).model_version for i in range(400))
    assert set(seen) == {stable, canary}
    assert 0.22 < seen[canary] / 400 < 0.38
    for user in ("u1", "u2", "u3"):
        versions = {service.rank(rank_request(user=user)).model_version for _ in range(5)}
        assert len(versions) == 1
    assert registry.promote_canary() == canary
    service.refresh()
    assert {service.rank(rank_request(user=f"u{i}")).model_version for i in range(20)} == {canary}


def test_bucket_is_uniform_enough() -> None:
    values = np.array([bucket(f"user-{i}") for i in range(5000)])
    assert values.min() >= 0.0
    assert values.max() < 1.0
    assert abs(values.mean() - 0.5) < 0.02


def test_a_registry_without_a_model_fails_the_start_with_its_reason(tmp_path: Path) -> None:
    from services.models.registry import RegistryError

    with pytest.raises(RegistryError, match="no current model"):
        RankService(AdsConfig(registry_dir=tmp_path, features_dir=None))
