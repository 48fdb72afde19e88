"""Choosing the published CTR model: candidates measured through the serving path, a paired
bootstrap of the AUC difference on the other policy's logs, the challenger published only
when it wins beyond noise; the figures, table and reliability plot published with it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from ray_jobs.ctr import candidates, metrics, selection, train
from services.models.registry import ModelRegistry, RegistryError
from tests.support.ctr import synthetic_logs


def test_a_challenger_is_published_only_when_its_interval_clears_zero() -> None:
    kept = selection.choose("logistic", {"boosted": (0.09, -0.058, 0.258)})
    assert kept.published == "logistic"
    assert "boosted is no better beyond noise" in kept.reason
    assert "+0.0900, 95% CI [-0.0580, +0.2580]" in kept.reason
    worse = selection.choose("logistic", {"boosted": (-0.2, -0.3, -0.1)})
    assert worse.published == "logistic"
    assert "boosted is worse" in worse.reason
    won = selection.choose("logistic", {"boosted": (0.1, 0.02, 0.2)})
    assert won.published == "boosted"
    assert "beyond noise" in won.reason
    alone = selection.choose("logistic", {"boosted": None})
    assert alone.published == "logistic"
    assert alone.auc_differences == {}


def test_with_several_challengers_the_intervals_widen_and_the_best_bound_wins() -> None:
    decision = selection.choose(
        "logistic", {"boosted": (0.1, 0.01, 0.2), "pooled": (0.08, 0.03, 0.15)}
    )
    assert decision.published == "pooled"  # the higher lower bound, not the higher point
    assert decision.level == pytest.approx(0.975)
    assert "97.5% CI" in decision.reason


def test_paired_difference_is_zero_for_the_same_model_and_positive_for_a_better_one() -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random(4000) < 0.05).astype(np.float64)
    noise = rng.random(4000)
    informative = labels * 0.3 + rng.random(4000)
    assert metrics.paired_auc_difference(labels, noise, noise, rounds=200) == (0.0, 0.0, 0.0)
    point, low, high = metrics.paired_auc_difference(labels, informative, noise, rounds=200)
    assert 0 < low < point < high


def test_auc_matches_a_pairwise_count_with_ties() -> None:
    rng = np.random.default_rng(5)
    labels = (rng.random(300) < 0.3).astype(np.float64)
    scores = rng.integers(0, 5, 300).astype(np.float64)  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert metrics.roc_auc(labels, scores) == pytest.approx(pairs / (len(pos) * len(neg)))


def _noise(
    frame: pd.DataFrame,
    labels: np.ndarray,
    split: candidates.Split,
    seed: int,
    pool: candidates.Pool | None = None,
) -> Pipeline:
    """A logistic model fitted on shuffled labels: no signal at all."""
    shuffled = np.random.default_rng(seed).permutation(labels)
    return candidates.logistic(frame, shuffled, split, seed)


def test_the_published_model_is_the_one_the_rule_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The incumbent learns nothing; the challenger (a real fit) must win and be what ships.
    monkeypatch.setattr(
        candidates,
        "CANDIDATES",
        {"logistic": (_noise, "noise"), "boosted": (candidates.logistic, "the real fit")},
    )
    result = train.train(synthetic_logs(3000, 21), synthetic_logs(3000, 22), seed=0)
    decision = result.manifest["selection"]
    assert decision["published"] == "boosted", decision["reason"]
    assert decision["auc_differences"]["boosted"][1] > 0
    assert result.manifest["model"] == "ctr-boosted"
    assert (
        result.manifest["metrics"]["other_policy"]
        == (result.manifest["comparison"]["boosted"]["other_policy"])
    )


def test_training_reports_every_candidate_and_publishes_the_plot(tmp_path: Path) -> None:
    pool = {"men": synthetic_logs(2000, 26)}
    result = train.train(synthetic_logs(3000, 23), synthetic_logs(2000, 24), 0, pool)
    manifest = result.manifest
    assert set(manifest["comparison"]) == set(candidates.CANDIDATES)
    for name, figures in manifest["comparison"].items():
        assert figures["serving_sklearn_max_abs_diff"] <= train.PARITY_TOLERANCE, name
        for key in ("holdout", "other_policy"):
            low, high = figures[key]["auc_ci95"]
            assert low <= figures[key]["auc"] <= high
            assert figures[key]["auc"] > 0.6  # the planted item is found by both
    assert manifest["metrics_table"].count("\n| ") == 2 * len(candidates.CANDIDATES)
    assert set(manifest["selection"]["auc_differences"]) == {"boosted", "pooled"}
    png = result.attachments["reliability.png"]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    registry = ModelRegistry(tmp_path)
    version = registry.publish(result.onnx, manifest, attachments=result.attachments)
    stored = json.loads((tmp_path / "ctr" / version / "manifest.json").read_text())
    assert (tmp_path / "ctr" / version / "reliability.png").read_bytes() == png
    assert stored["attachments"]["reliability.png"] == hashlib.sha256(png).hexdigest()


@pytest.mark.parametrize("name", ["../escape.png", "model.onnx", "manifest.json", ".hidden"])
def test_an_attachment_must_be_a_plain_new_file_name(tmp_path: Path, name: str) -> None:
    result = train.train(synthetic_logs(1500, 25), None, seed=0)
    with pytest.raises(RegistryError, match="not plain file names"):
        ModelRegistry(tmp_path).publish(result.onnx, result.manifest, attachments={name: b"x"})
    assert ModelRegistry(tmp_path).versions() == []


def test_the_pool_takes_other_campaigns_rows_from_before_the_holdout_with_their_own_ids() -> None:
    served, other = synthetic_logs(3000, 27), synthetic_logs(3000, 28)
    split = candidates.Split.of(3000)
    pool = train._pool(served, split, {"men": other})
    assert pool is not None
    starts = served.events["timestamp"].iloc[split.holdout]
    expected = other.events[other.events["timestamp"] < starts]
    assert 0 < len(pool.labels) == len(expected) < len(other.events)  # nothing from the holdout on
    assert (pool.labels == expected["click"].to_numpy()).all()
    assert set(pool.frame["item_id"]) <= {f"men/{i}" for i in range(6)}
    # Their catalogue came along under the same ids, not the served campaign's rows.
    first = pool.frame.iloc[0]
    item = int(first["item_id"].split("/")[1])
    row = other.items[other.items["item_id"] == item].iloc[0]
    assert first["item_feature_1"] == str(row["item_feature_1"])
    assert train._pool(served, split, {}) is None


def test_only_the_pooled_candidate_sees_the_other_campaigns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, bool] = {}

    def spy(name: str) -> candidates.Fit:
        def fit(*args: Any) -> Pipeline:
            seen[name] = args[4] is not None  # (frame, labels, split, seed, pool)
            return candidates.logistic(*args)

        return fit

    monkeypatch.setattr(
        candidates,
        "CANDIDATES",
        {name: (spy(name), "spy") for name in ("logistic", "boosted", "pooled")},
    )
    train.train(synthetic_logs(1500, 29), None, 0, {"men": synthetic_logs(1500, 30)})
    assert seen == {"logistic": False, "boosted": False, "pooled": True}
