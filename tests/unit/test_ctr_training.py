"""The CTR training job on data with a planted signal, in the Open Bandit CSV layout:
the real parsing, feature, training, ONNX export and registry code, no network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ray_jobs.ctr import metrics
from ray_jobs.ctr.features import training_frame
from ray_jobs.ctr.train import predict_onnx, train
from services.models.registry import ModelRegistry, RegistryError
from tests.support.ctr import synthetic_logs


def test_training_finds_a_planted_signal_and_onnx_agrees() -> None:
    result = train(synthetic_logs(4000, 1), synthetic_logs(2000, 2), seed=0)
    holdout = result.manifest["metrics"]["holdout"]
    assert holdout["auc"] > 0.7  # no skill is 0.5; a linear model cannot fit the interaction fully
    assert holdout["auc_ci95"][0] > 0.6
    assert holdout["log_loss"] < holdout["log_loss_base_rate"]
    assert result.manifest["metrics"]["other_policy"]["auc"] > 0.7
    assert result.manifest["serving_sklearn_max_abs_diff"] < 1e-6
    calibration = holdout["calibration"]
    assert abs(calibration["mean_pctr"] - calibration["observed_ctr"]) < 0.03


def test_training_is_deterministic_for_a_seed() -> None:
    logs = synthetic_logs(1500, 3)
    first, second = train(logs, None, seed=7), train(logs, None, seed=7)
    assert first.onnx == second.onnx
    assert first.manifest["training_data_sha256"] == logs.fingerprint


def test_onnx_scores_unknown_categories_with_defaults() -> None:
    logs = synthetic_logs(1500, 4)
    result = train(logs, None, seed=0)
    frame = training_frame(logs.events, logs.items).head(3).copy()
    frame["item_id"] = "never-seen"
    frame["item_feature_1"] = "never-seen"
    probs = predict_onnx(result.onnx, frame)
    assert np.all((probs > 0) & (probs < 1))


def test_registry_publishes_versions_atomically_and_verifies_checksums(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    result = train(synthetic_logs(1500, 5), None, seed=0)
    v1 = registry.publish(result.onnx, result.manifest)
    v2 = registry.publish(result.onnx, result.manifest, make_current=False)
    assert registry.versions() == [v1, v2]
    assert registry.current() == v1
    loaded = registry.load()
    assert loaded.onnx == result.onnx
    assert loaded.manifest["version"] == v1
    (tmp_path / "ctr" / v2 / "model.onnx").write_bytes(result.onnx[:-10])
    with pytest.raises(RegistryError, match="checksum mismatch"):
        registry.load(v2)
    manifest = json.loads((tmp_path / "ctr" / v1 / "manifest.json").read_text())
    del manifest["feature_schema"]
    (tmp_path / "ctr" / v1 / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RegistryError, match="manifest lacks feature_schema"):
        registry.load(v1)
    with pytest.raises(RegistryError, match="no version"):
        registry.set_current("v9999-deadbeef")


def test_auc_and_log_loss_reference_values() -> None:
    labels = np.array([0, 0, 1, 1], dtype=np.float64)
    assert metrics.roc_auc(labels, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert metrics.roc_auc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert metrics.log_loss(labels, np.full(4, 0.5)) == pytest.approx(np.log(2))
