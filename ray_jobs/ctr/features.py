"""The CTR model's input features: one definition used to build training frames and to tell
the serving side (through the manifest) what to feed the ONNX model.

At serving time the user features and affinities come from the public feature snapshot
(keyed by pseudonymous id) or fall back to the defaults below; the position is fixed at 1, so
candidates are compared as if shown in the same slot (the position feature absorbs position
bias during training).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # "string" or "float"
    default: str | float
    source: str  # where serving finds it: user | item | context

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


SCHEMA: tuple[Feature, ...] = (
    *(Feature(f"user_feature_{i}", "string", "unknown", "user") for i in range(4)),
    Feature("item_feature_0", "float", 0.0, "item"),
    *(Feature(f"item_feature_{i}", "string", "unknown", "item") for i in range(1, 4)),
    Feature("position", "string", "1", "context"),
    Feature("affinity", "float", 0.0, "user"),
)
CATEGORICAL = [f.name for f in SCHEMA if f.dtype == "string"]
NUMERIC = [f.name for f in SCHEMA if f.dtype == "float"]


def training_frame(events: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """One row per logged impression with exactly the SCHEMA columns, in order."""
    frame = events.merge(items, on="item_id", how="left", validate="many_to_one")
    affinity_columns = [f"affinity_{i}" for i in range(len(items))]
    affinities = frame[affinity_columns].to_numpy(dtype=np.float64)
    frame["affinity"] = affinities[np.arange(len(frame)), frame["item_id"].to_numpy()]
    frame["position"] = frame["position"].astype(str)
    out = pd.DataFrame({f.name: frame[f.name] for f in SCHEMA})
    for feature in SCHEMA:
        if feature.dtype == "string":
            out[feature.name] = out[feature.name].fillna(feature.default).astype(str)
        else:
            out[feature.name] = out[feature.name].fillna(feature.default).astype(np.float32)
    return out


def item_catalogue(items: pd.DataFrame) -> dict[str, dict[str, str | float]]:
    """Item features by item id, as the manifest carries them to the ranking service."""
    item_features = [f for f in SCHEMA if f.source == "item"]
    catalogue: dict[str, dict[str, str | float]] = {}
    for row in items.to_dict(orient="records"):
        catalogue[str(row["item_id"])] = {
            f.name: float(row[f.name]) if f.dtype == "float" else str(row[f.name])
            for f in item_features
        }
    return catalogue


def onnx_inputs(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The dict onnxruntime takes: one [N, 1] tensor per feature."""
    inputs: dict[str, np.ndarray] = {}
    for feature in SCHEMA:
        column = frame[feature.name].to_numpy()
        if feature.dtype == "string":
            inputs[feature.name] = column.astype(object).reshape(-1, 1)
        else:
            inputs[feature.name] = column.astype(np.float32).reshape(-1, 1)
    return inputs
