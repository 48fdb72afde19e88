"""Train the candidate CTR models (candidates.py) on the Open Bandit random-policy logs,
export each to ONNX, measure each through the ranking service on a time-ordered holdout and on
the other policy's logs, publish the one the selection rule picks (selection.py) with every
candidate's figures and the reliability plot, to the model registry.

    python -m ray_jobs.ctr.train [--registry var/models] [--seed 0]
    ray job submit --working-dir . -- python -m ray_jobs.ctr.train   # on a Ray cluster

Train/serve parity: each candidate's holdout is scored by `RankService` (serving_path.py) and
by scikit-learn on a frame the training code builds from the logs; they must agree within
PARITY_TOLERANCE, or nothing is published.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import sklearn
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from ray_jobs.ctr import candidates, data, features, metrics, report, selection, serving_path
from services.models.registry import ModelRegistry

PARITY_TOLERANCE = 1e-6  # the bar for train/serve parity


@dataclass(frozen=True)
class TrainResult:
    onnx: bytes
    manifest: dict[str, Any]
    pipeline: Pipeline  # the fitted scikit-learn model the published graph was exported from
    attachments: dict[str, bytes] = field(default_factory=dict)  # published beside the model


@dataclass(frozen=True)
class Scored:
    """One candidate, exported and measured through the serving path."""

    pipeline: Pipeline
    onnx: bytes
    manifest: dict[str, Any]
    parity: float
    holdout: np.ndarray  # served pCTR per holdout row
    other: np.ndarray | None  # served pCTR per row of the other policy's logs


def train(
    logs: data.Logs,
    other_policy: data.Logs | None,
    seed: int = 0,
    other_campaigns: Mapping[str, data.Logs] | None = None,
) -> TrainResult:
    """`logs`: the served campaign's random-policy logs; `other_policy`: the other policy's
    logs of the same campaign; `other_campaigns`: the sample's other campaigns' random-policy
    logs, for the pooled candidate (skipped without them)."""
    frame = features.training_frame(logs.events, logs.items)
    labels = logs.events["click"].to_numpy(dtype=np.float64)
    split = candidates.Split.of(len(frame))  # rows are in time order
    base_rate = float(labels[: split.holdout].mean())
    pool = _pool(logs, split, other_campaigns or {})
    scored = {}
    for name, (fit, _) in candidates.CANDIDATES.items():
        if name in candidates.NEEDS_POOL and pool is None:
            continue  # no other campaigns given
        fitted = fit(frame, labels, split, seed, pool if name in candidates.NEEDS_POOL else None)
        scored[name] = _score(name, fitted, logs, other_policy, split, seed)
    holdout_labels = labels[split.holdout :]
    other_labels = (
        None if other_policy is None else other_policy.events["click"].to_numpy(dtype=np.float64)
    )
    comparison: dict[str, dict[str, Any]] = {}
    for name, s in scored.items():
        comparison[name] = {
            "description": candidates.CANDIDATES[name][1],
            "serving_sklearn_max_abs_diff": s.parity,
            "holdout": metrics.evaluate(holdout_labels, s.holdout, base_rate, seed),
        }
        if other_labels is not None and s.other is not None:
            comparison[name]["other_policy"] = metrics.evaluate(
                other_labels, s.other, base_rate, seed
            )
    decision = selection.choose(candidates.INCUMBENT, _differences(scored, other_labels, seed))
    chosen = scored[decision.published]
    manifest = {
        **chosen.manifest,
        "metrics": {
            "train_rows": split.holdout
            + (
                len(pool.labels)
                if pool is not None and decision.published in candidates.NEEDS_POOL
                else 0
            ),
            "train_ctr": base_rate,
            "measured_through": "RankService (in process), position 1, the shipped catalogue",
            **{
                k: v
                for k, v in comparison[decision.published].items()
                if k in ("holdout", "other_policy")
            },
        },
        "serving_sklearn_max_abs_diff": chosen.parity,
        "comparison": comparison,
        "selection": decision.as_dict(),
        "metrics_table": report.metrics_table(comparison, decision.published),
    }
    attachments = {"reliability.png": report.reliability_png(comparison)}
    return TrainResult(chosen.onnx, manifest, chosen.pipeline, attachments)


def _pool(
    logs: data.Logs, split: candidates.Split, others: Mapping[str, data.Logs]
) -> candidates.Pool | None:
    """The other campaigns' rows logged before the served campaign's holdout starts, with
    campaign-aware item ids; None without other campaigns."""
    if not others:
        return None
    holdout_starts = logs.events["timestamp"].iloc[split.holdout]
    frames, labels = [], []
    for campaign, other in sorted(others.items()):
        before = other.events[other.events["timestamp"] < holdout_starts]
        events, items = features.campaign_aware(before, other.items, campaign)
        frames.append(features.training_frame(events, items))
        labels.append(before["click"].to_numpy(dtype=np.float64))
    return candidates.Pool(pd.concat(frames, ignore_index=True), np.concatenate(labels))


def _differences(
    scored: Mapping[str, Scored], other_labels: np.ndarray | None, seed: int
) -> dict[str, selection.Interval | None]:
    """Per challenger, AUC(challenger) - AUC(incumbent) on the other policy's logs (paired
    bootstrap at the selection's level), or None without those logs."""
    incumbent = scored[candidates.INCUMBENT].other
    challengers = [name for name in scored if name != candidates.INCUMBENT]
    level = selection.interval_level(len(challengers))
    out: dict[str, selection.Interval | None] = {}
    for name in challengers:
        mine = scored[name].other
        out[name] = (
            None
            if other_labels is None or incumbent is None or mine is None
            else metrics.paired_auc_difference(
                other_labels, mine, incumbent, seed=seed, level=level
            )
        )
    return out


def _score(
    name: str,
    pipeline: Pipeline,
    logs: data.Logs,
    other_policy: data.Logs | None,
    split: candidates.Split,
    seed: int,
) -> Scored:
    """Export one candidate and score it through the serving path; refuse it (ValueError) if
    serving and scikit-learn disagree on the holdout."""
    onnx_bytes = export_onnx(pipeline)
    manifest = _manifest(name, logs, seed)
    holdout_events = logs.events.iloc[split.holdout :]
    served = serving_path.serving_scores(onnx_bytes, manifest, holdout_events)
    expected = pipeline.predict_proba(
        features.training_frame(holdout_events, logs.items, at_serving=True)
    )[:, 1]
    parity = float(np.max(np.abs(served - expected)))
    if parity > PARITY_TOLERANCE:
        raise ValueError(
            f"{name}: the ranking service and scikit-learn disagree by {parity:.2e} "
            f"> {PARITY_TOLERANCE}"
        )
    other = (
        None
        if other_policy is None
        else serving_path.serving_scores(onnx_bytes, manifest, other_policy.events)
    )
    return Scored(pipeline, onnx_bytes, manifest, parity, served, other)


def _manifest(name: str, logs: data.Logs, seed: int) -> dict[str, Any]:
    return {
        "model": f"ctr-{name}",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "feature_schema": [f.as_dict() for f in features.SCHEMA],
        # Serving looks a candidate's item features up here by its item_id.
        "item_features": features.item_catalogue(logs.items),
        "output": {"name": "probabilities", "column": 1},
        "metrics": {},
        "training_data_sha256": logs.fingerprint,
        "seed": seed,
        "hyperparameters": {
            "C": candidates.REGULARISATION_C,
            "boosting": candidates.BOOSTING,
            "split": {"train": candidates.TRAIN_SHARE, "validation": candidates.VALIDATION_SHARE},
        },
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "onnxruntime": ort.__version__,
        },
    }


def export_onnx(pipeline: Pipeline) -> bytes:
    initial_types = [
        (f.name, StringTensorType([None, 1]) if f.dtype == "string" else FloatTensorType([None, 1]))
        for f in features.SCHEMA
    ]
    model = to_onnx(
        pipeline,
        initial_types=initial_types,
        options={LogisticRegression: {"zipmap": False}, CalibratedClassifierCV: {"zipmap": False}},
        target_opset=17,
    )
    return bytes(model.SerializeToString())


def predict_onnx(onnx: bytes, frame: Any) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    probabilities = session.run(["probabilities"], features.onnx_inputs(frame))[0]
    return np.asarray(probabilities[:, 1], dtype=np.float64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train and publish the CTR model.")
    parser.add_argument("--registry", type=Path, default=Path("var/models"))
    parser.add_argument("--cache", type=Path, default=data.DEFAULT_CACHE)
    parser.add_argument("--campaign", default="all", choices=data.CAMPAIGNS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    wheel = data.ensure_wheel(args.cache)
    logs = data.load_from_wheel(wheel, "random", args.campaign)
    other = data.load_from_wheel(wheel, "bts", args.campaign)
    campaigns = {
        c: data.load_from_wheel(wheel, "random", c) for c in data.CAMPAIGNS if c != args.campaign
    }
    result = train(logs, other, args.seed, campaigns)
    version = ModelRegistry(args.registry).publish(
        result.onnx, result.manifest, attachments=result.attachments
    )
    summary = {
        "version": version,
        "published": result.manifest["selection"]["published"],
        "why": result.manifest["selection"]["reason"],
        "holdout": _brief(result.manifest["metrics"]["holdout"]),
        "other_policy": _brief(result.manifest["metrics"]["other_policy"]),
        "serving_sklearn_max_abs_diff": result.manifest["serving_sklearn_max_abs_diff"],
    }
    print(json.dumps(summary, indent=2))
    return 0


def _brief(evaluation: dict[str, Any]) -> dict[str, Any]:
    cal = evaluation["calibration"]
    return {
        "rows": evaluation["rows"],
        "clicks": evaluation["clicks"],
        "auc": round(evaluation["auc"], 4),
        "auc_ci95": [round(x, 4) for x in evaluation["auc_ci95"]],
        "log_loss": round(evaluation["log_loss"], 5),
        "log_loss_base_rate": round(evaluation["log_loss_base_rate"], 5),
        "mean_pctr": round(cal["mean_pctr"], 5),
        "observed_ctr": round(cal["observed_ctr"], 5),
        "ece": round(cal["ece"], 5),
    }


if __name__ == "__main__":
    raise SystemExit(main())
