"""The CTR models the training job compares, on the same features (features.SCHEMA) and the
same time-ordered split of the training logs:

    | train (first 60%) | validation (next 20%) | holdout (last 20%) |

- `logistic` (the incumbent): L2-regularised logistic regression on the one-hot features,
  fitted on train + validation. A linear model on ~50 clicks per 10,000 rows is calibrated
  by construction (its mean pCTR matches the observed CTR), so it needs no calibrator.
- `pooled`: the same logistic model, trained also on the sample's other campaigns (30,000
  rows instead of 10,000), with their rows logged before the holdout starts. Item ids are per
  campaign (item 12 of `men` is not item 12 of `all`, and each campaign's file hashes the
  categories its own way), so their items get campaign-aware ids (`men/12`) and share nothing
  with the served campaign's but the position and intercept terms.
- `boosted`: gradient-boosted trees (scikit-learn's GradientBoostingClassifier: shallow,
  shrunk, subsampled, large leaves, since the positives are few) fitted on train, then
  Platt-scaled on validation. Boosting on rare clicks over-scores its leaves; the sigmoid
  calibrator brings pCTR back to click rates, and it is part of the exported graph
  (CalibratedClassifierCV), so serving gets calibrated scores. Platt rather than isotonic:
  with ~20 validation clicks isotonic regression fits steps to single clicks.

Nothing is tuned on the holdout or the other policy's logs: the settings are fixed here.
skl2onnx converts both; HistGradientBoostingClassifier does not convert with the installed
scikit-learn (the tree converter rejects its boolean attributes), hence the classic one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import PredefinedSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from ray_jobs.ctr import features

TRAIN_SHARE, VALIDATION_SHARE = 0.6, 0.2  # the rest is the holdout
REGULARISATION_C = 0.1
BOOSTING = {
    "n_estimators": 150,
    "learning_rate": 0.05,
    "max_depth": 3,
    "min_samples_leaf": 100,
    "subsample": 0.8,
}
INCUMBENT = "logistic"


@dataclass(frozen=True)
class Split:
    """Row counts of a time-ordered split: [0, train) [train, holdout) [holdout, rows)."""

    train: int
    holdout: int
    rows: int

    @classmethod
    def of(cls, rows: int) -> Split:
        train, holdout = int(rows * TRAIN_SHARE), int(rows * (TRAIN_SHARE + VALIDATION_SHARE))
        if not 0 < train < holdout < rows:
            raise ValueError(f"{rows} rows are too few to split train/validation/holdout")
        return cls(train, holdout, rows)


def _encoder(dense: bool) -> ColumnTransformer:
    return ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=not dense),
                features.CATEGORICAL,
            ),
            ("numeric", "passthrough", features.NUMERIC),
        ]
    )


@dataclass(frozen=True)
class Pool:
    """Rows of the sample's other campaigns logged before the served campaign's holdout
    starts, framed with campaign-aware item ids (features.campaign_aware)."""

    frame: pd.DataFrame
    labels: np.ndarray


def logistic(
    frame: pd.DataFrame, labels: np.ndarray, split: Split, seed: int, pool: Pool | None = None
) -> Pipeline:
    model = LogisticRegression(C=REGULARISATION_C, max_iter=2000, random_state=seed)
    pipeline = Pipeline([("encode", _encoder(dense=False)), ("model", model)])
    rows, y = frame.iloc[: split.holdout], labels[: split.holdout]
    if pool is not None:
        rows, y = pd.concat([rows, pool.frame], ignore_index=True), np.concatenate([y, pool.labels])
    return pipeline.fit(rows, y)


def pooled(
    frame: pd.DataFrame, labels: np.ndarray, split: Split, seed: int, pool: Pool | None = None
) -> Pipeline:
    if pool is None:
        raise ValueError("the pooled candidate needs the other campaigns' logs")
    return logistic(frame, labels, split, seed, pool)


def boosted(
    frame: pd.DataFrame, labels: np.ndarray, split: Split, seed: int, pool: Pool | None = None
) -> Pipeline:
    # -1: fit the trees on the row; 0: calibrate on it. One split, so one calibrated model.
    folds = np.where(np.arange(split.holdout) < split.train, -1, 0)
    trees = GradientBoostingClassifier(random_state=seed, **BOOSTING)
    model = CalibratedClassifierCV(trees, method="sigmoid", cv=PredefinedSplit(folds))
    pipeline = Pipeline([("encode", _encoder(dense=True)), ("model", model)])
    return pipeline.fit(frame.iloc[: split.holdout], labels[: split.holdout])


Fit = Callable[[pd.DataFrame, np.ndarray, Split, int, Pool | None], Pipeline]
CANDIDATES: dict[str, tuple[Fit, str]] = {
    "logistic": (logistic, "L2 logistic regression (C=0.1) on train + validation"),
    "boosted": (boosted, "gradient-boosted trees on train, Platt-scaled on validation"),
    "pooled": (
        pooled,
        "the logistic model, also trained on the other campaigns' logs from before the holdout "
        "(campaign-aware item ids)",
    ),
}
NEEDS_POOL = {"pooled"}
