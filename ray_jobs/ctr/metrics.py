"""Evaluation of a CTR model on held-out data (pure numpy). The signal in the Open Bandit
logs is thin, so every number comes with the baseline or interval that says what it is worth."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

Floats = NDArray[np.float64]
EPS = 1e-12


def roc_auc(labels: Floats, scores: Floats) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    labels = np.asarray(labels, dtype=np.float64)
    positives = labels.sum()
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=np.float64))  # ties get their average rank
    return float(
        (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def bootstrap_auc(
    labels: Floats, scores: Floats, rounds: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    values = []
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        value = roc_auc(labels[idx], scores[idx])
        if not np.isnan(value):
            values.append(value)
    low, high = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def paired_auc_difference(
    labels: Floats,
    challenger: Floats,
    incumbent: Floats,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """AUC(challenger) - AUC(incumbent) on the same rows, with a percentile bootstrap interval
    that resamples rows once for both models (paired), so their shared noise cancels."""
    labels = np.asarray(labels, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = len(labels)
    values = []
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        value = roc_auc(labels[idx], challenger[idx]) - roc_auc(labels[idx], incumbent[idx])
        if not np.isnan(value):
            values.append(value)
    low, high = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    point = roc_auc(labels, challenger) - roc_auc(labels, incumbent)
    return float(point), float(low), float(high)


def log_loss(labels: Floats, probs: Floats) -> float:
    p = np.clip(probs, EPS, 1 - EPS)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def calibration(labels: Floats, probs: Floats, bins: int = 10) -> dict[str, object]:
    """Mean prediction vs observed rate, overall and per quantile bin, and the expected
    calibration error (weighted mean absolute gap)."""
    edges = np.quantile(probs, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, probs, side="right") - 1, 0, bins - 1)
    table = []
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if not mask.any():
            continue
        predicted, observed = float(probs[mask].mean()), float(labels[mask].mean())
        ece += mask.mean() * abs(predicted - observed)
        table.append({"n": int(mask.sum()), "mean_pctr": predicted, "ctr": observed})
    return {
        "mean_pctr": float(probs.mean()),
        "observed_ctr": float(labels.mean()),
        "ece": float(ece),
        "bins": table,
    }


def evaluate(labels: Floats, probs: Floats, base_rate: float, seed: int = 0) -> dict[str, object]:
    """AUC with a 95% bootstrap interval, log loss against predicting the training base rate,
    and calibration."""
    low, high = bootstrap_auc(labels, probs, seed=seed)
    return {
        "rows": len(labels),
        "clicks": int(labels.sum()),
        "auc": roc_auc(labels, probs),
        "auc_ci95": [low, high],
        "log_loss": log_loss(labels, probs),
        "log_loss_base_rate": log_loss(labels, np.full(len(labels), base_rate)),
        "calibration": calibration(labels, probs),
    }
