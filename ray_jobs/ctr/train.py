"""Train the CTR model on the Open Bandit random-policy logs, export it to ONNX, measure it
through the ranking service on a time-ordered holdout and on the other policy's logs, and
publish it to the model registry.

    python -m ray_jobs.ctr.train [--registry var/models] [--seed 0]
    ray job submit --working-dir . -- python -m ray_jobs.ctr.train   # on a Ray cluster

Model: L2-regularised logistic regression on the features of the serving contract
(features.py: the item, its catalogue features, the position). With ~50 clicks per 10,000 rows
anything more flexible fits noise; a linear model stays calibrated (mean pCTR near the
observed CTR), which matters more here than ranking power because eCPM = pCTR x bid. The
regularisation strength is fixed, not tuned on the holdout.

Train/serve parity: the holdout is scored by `RankService` (serving_path.py) and by
scikit-learn on a frame the training code builds from the logs; they must agree within
PARITY_TOLERANCE, or nothing is published.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import sklearn
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from ray_jobs.ctr import data, features, metrics, serving_path
from services.models.registry import ModelRegistry

HOLDOUT_SHARE = 0.2
REGULARISATION_C = 0.1
PARITY_TOLERANCE = 1e-6  # the bar for train/serve parity


@dataclass(frozen=True)
class TrainResult:
    onnx: bytes
    manifest: dict[str, Any]
    pipeline: Pipeline  # the fitted scikit-learn model the ONNX graph was exported from


def build_pipeline(seed: int) -> Pipeline:
    encode = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), features.CATEGORICAL),
            ("numeric", "passthrough", features.NUMERIC),
        ]
    )
    model = LogisticRegression(C=REGULARISATION_C, max_iter=2000, random_state=seed)
    return Pipeline([("encode", encode), ("model", model)])


def train(logs: data.Logs, other_policy: data.Logs | None, seed: int = 0) -> TrainResult:
    frame = features.training_frame(logs.events, logs.items)
    labels = logs.events["click"].to_numpy(dtype=np.float64)
    cut = int(len(frame) * (1 - HOLDOUT_SHARE))  # rows are in time order
    pipeline = build_pipeline(seed).fit(frame.iloc[:cut], labels[:cut])
    base_rate = float(labels[:cut].mean())
    onnx_bytes = export_onnx(pipeline)
    manifest: dict[str, Any] = {
        "model": "ctr-logistic-regression",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "feature_schema": [f.as_dict() for f in features.SCHEMA],
        # Serving looks a candidate's item features up here by its item_id.
        "item_features": features.item_catalogue(logs.items),
        "output": {"name": "probabilities", "column": 1},
        "metrics": {},
        "training_data_sha256": logs.fingerprint,
        "seed": seed,
        "hyperparameters": {"C": REGULARISATION_C, "holdout_share": HOLDOUT_SHARE},
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "onnxruntime": ort.__version__,
        },
    }
    # Every figure below is measured through the ranking service, on rows framed as serving
    # frames them (position 1, the shipped catalogue).
    holdout_events = logs.events.iloc[cut:]
    served = serving_path.serving_scores(onnx_bytes, manifest, holdout_events)
    expected = pipeline.predict_proba(
        features.training_frame(holdout_events, logs.items, at_serving=True)
    )[:, 1]
    parity = float(np.max(np.abs(served - expected)))
    if parity > PARITY_TOLERANCE:
        raise ValueError(
            f"the ranking service and scikit-learn disagree by {parity:.2e} > {PARITY_TOLERANCE}"
        )
    evaluation: dict[str, Any] = {
        "train_rows": cut,
        "train_ctr": base_rate,
        "measured_through": "RankService (in process), position 1, the shipped catalogue",
        "holdout": metrics.evaluate(labels[cut:], served, base_rate, seed),
    }
    if other_policy is not None:
        other_labels = other_policy.events["click"].to_numpy(dtype=np.float64)
        other_served = serving_path.serving_scores(onnx_bytes, manifest, other_policy.events)
        evaluation["other_policy"] = metrics.evaluate(other_labels, other_served, base_rate, seed)
    manifest["metrics"] = evaluation
    manifest["serving_sklearn_max_abs_diff"] = parity
    return TrainResult(onnx_bytes, manifest, pipeline)


def export_onnx(pipeline: Pipeline) -> bytes:
    initial_types = [
        (f.name, StringTensorType([None, 1]) if f.dtype == "string" else FloatTensorType([None, 1]))
        for f in features.SCHEMA
    ]
    model = to_onnx(
        pipeline,
        initial_types=initial_types,
        options={LogisticRegression: {"zipmap": False}},
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
    parser.add_argument("--campaign", default="all", choices=["all", "men", "women"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    wheel = data.ensure_wheel(args.cache)
    logs = data.load_from_wheel(wheel, "random", args.campaign)
    other = data.load_from_wheel(wheel, "bts", args.campaign)
    result = train(logs, other, args.seed)
    version = ModelRegistry(args.registry).publish(result.onnx, result.manifest)
    summary = {
        "version": version,
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
