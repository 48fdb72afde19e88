"""The CTR model's inputs on the Open Bandit logs, under the feature contract
(services.models.features): only what the ranking service will have for a candidate.

- `item_id` (candidate): the request names each candidate's item;
- `item_feature_0..3` (catalogue): looked up by item id in the catalogue the manifest ships,
  which is the training campaign's `item_context.csv`; any other logs (the other policy's,
  whose file hashes the same items' categories differently) are framed with that catalogue,
  as serving would;
- `position` (serving): the logged slot in training, so the position term absorbs position
  bias; serving scores every candidate at position 1, comparing them as if shown in the same
  slot (a debiasing choice, not a missing feature).

Left out, because nothing at serving could supply them: the Open Bandit user features (the
platform's feature snapshot has its own columns, built from its own events, and the logs have
no user id to build those from) and the user-item affinity (per user and item; no request or
snapshot carries it).

`training_frame` builds the columns with pandas from the logs, independently of the serving
code (`services.public.ads.ranking.model_inputs`): the parity test compares the two.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.models.features import Feature

SCHEMA: tuple[Feature, ...] = (
    Feature("item_id", "string", "unknown", "candidate"),
    Feature("item_feature_0", "float", 0.0, "catalogue"),
    *(Feature(f"item_feature_{i}", "string", "unknown", "catalogue") for i in range(1, 4)),
    Feature("position", "string", "1", "serving"),
)
CATEGORICAL = [f.name for f in SCHEMA if f.dtype == "string"]
NUMERIC = [f.name for f in SCHEMA if f.dtype == "float"]


def training_frame(
    events: pd.DataFrame, catalogue: pd.DataFrame, at_serving: bool = False
) -> pd.DataFrame:
    """One row per logged impression with exactly the SCHEMA columns, in order. Item features
    come from `catalogue` by item id (unknown items get the defaults); `at_serving` frames
    the rows as serving sees them (serving features at their fixed values)."""
    ids = events[["item_id"]].astype({"item_id": str}).reset_index(drop=True)
    keyed = catalogue.astype({"item_id": str})
    frame = ids.merge(keyed, on="item_id", how="left", validate="many_to_one")
    out = pd.DataFrame(index=frame.index)
    for feature in SCHEMA:
        if feature.source == "serving":
            fixed = at_serving or feature.name not in events.columns
            column = (
                pd.Series(feature.default, index=frame.index)
                if fixed
                else events[feature.name].reset_index(drop=True)
            )
        elif feature.source == "candidate":
            column = events[feature.name].reset_index(drop=True).astype(str)
        else:
            column = (
                frame[feature.name] if feature.name in frame else pd.Series(np.nan, frame.index)
            )
        if feature.dtype == "string":
            out[feature.name] = column.where(column.notna(), feature.default).astype(str)
        else:
            out[feature.name] = column.fillna(feature.default).astype(np.float32)
    return out


def campaign_aware(
    events: pd.DataFrame, items: pd.DataFrame, campaign: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A campaign's logs with item ids `<campaign>/<id>`, so they cannot be mistaken for the
    served campaign's items when pooled."""
    events, items = events.copy(), items.copy()
    events["item_id"] = campaign + "/" + events["item_id"].astype(str)
    items["item_id"] = campaign + "/" + items["item_id"].astype(str)
    return events, items


def item_catalogue(items: pd.DataFrame) -> dict[str, dict[str, str | float]]:
    """Item features by item id, as the manifest carries them to the ranking service."""
    item_features = [f for f in SCHEMA if f.source == "catalogue"]
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
