"""Train/serve parity: a model trained by the real training code, exported to ONNX, published
and served by `RankService` gives the pCTR scikit-learn gives for the same logged rows, and
the check fails when serving computes a feature differently or cannot find it."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from ray_jobs.ctr import features, serving_path, train
from ray_jobs.ctr.data import Logs
from services.models.registry import RegistryError
from tests.support.ctr import synthetic_logs

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def trained() -> tuple[Logs, train.TrainResult]:
    logs = synthetic_logs(3000, 11)
    return logs, train.train(logs, None, seed=0)


def _gap(logs: Logs, result: train.TrainResult, manifest: dict[str, Any]) -> float:
    served = serving_path.serving_scores(result.onnx, manifest, logs.events)
    frame = features.training_frame(logs.events, logs.items, at_serving=True)
    expected = result.pipeline.predict_proba(frame)[:, 1]
    return float(np.max(np.abs(served - expected)))


def test_serving_gives_the_training_frameworks_pctr_for_every_logged_row(
    trained: tuple[Logs, train.TrainResult],
) -> None:
    logs, result = trained
    assert _gap(logs, result, result.manifest) <= TOLERANCE
    assert result.manifest["serving_sklearn_max_abs_diff"] <= TOLERANCE


def test_the_item_and_its_catalogue_reach_the_model_at_serving(
    trained: tuple[Logs, train.TrainResult],
) -> None:
    # Not a constant model: the planted item gets a higher pCTR through serving too.
    logs, result = trained
    served = serving_path.serving_scores(result.onnx, result.manifest, logs.events.head(200))
    items = logs.events["item_id"].head(200).to_numpy()
    assert served[items == 0].min() > served[items != 0].max()


def _broken(manifest: dict[str, Any], how: str) -> dict[str, Any]:
    broken = copy.deepcopy(manifest)
    if how == "catalogue missing":
        broken["item_features"] = {}
    elif how == "catalogue of the other encoding":
        for row in broken["item_features"].values():
            row["item_feature_1"] = "hashed-" + str(row["item_feature_1"])
    elif how == "position served at another slot":
        [position] = [f for f in broken["feature_schema"] if f["name"] == "position"]
        position["default"] = "3"
    elif how == "item looked up in the snapshot":
        [item] = [f for f in broken["feature_schema"] if f["name"] == "item_id"]
        item["source"] = "snapshot"
    return broken


@pytest.mark.parametrize(
    "how",
    [
        "catalogue missing",
        "catalogue of the other encoding",
        "position served at another slot",
        "item looked up in the snapshot",
    ],
)
def test_the_check_fails_when_serving_computes_a_feature_differently(
    trained: tuple[Logs, train.TrainResult], how: str
) -> None:
    logs, result = trained
    assert _gap(logs, result, _broken(result.manifest, how)) > TOLERANCE


def test_a_model_asking_for_what_serving_cannot_supply_is_refused_by_name(
    trained: tuple[Logs, train.TrainResult],
) -> None:
    _, result = trained
    manifest = copy.deepcopy(result.manifest)
    manifest["feature_schema"].append(
        {"name": "affinity", "dtype": "float", "default": 0.0, "source": "request_header"}
    )
    with pytest.raises(RegistryError, match="'affinity': source 'request_header'"):
        serving_path.serving_scores(result.onnx, manifest, synthetic_logs(10, 1).events)


def test_training_publishes_nothing_when_serving_disagrees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = serving_path.serving_scores
    monkeypatch.setattr(serving_path, "serving_scores", lambda *args: real(*args) + 2 * TOLERANCE)
    with pytest.raises(ValueError, match="the ranking service and scikit-learn disagree"):
        train.train(synthetic_logs(1500, 12), None, seed=0)
