"""Score logged impressions the way production scores them: the model published to a scratch
registry and loaded by the ranking service (`RankService`, in process, no Ray), one
`RankRequest` per impression with the logged item as its only candidate, pCTR read from the
answer. What the manifest reports as the model's quality is measured here, so a feature that
serving computes differently from training, or cannot find, shows in the figures (and in the
parity test) instead of hiding behind a frame built by the training code.

No decision rules apply (an empty rules file), so every candidate is scored and answered;
the viewer is anonymous: the Open Bandit logs have no user id, and the model takes nothing
from the feature snapshot.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isthmus.ads.v1 import ads_pb2
from services.models.registry import ModelRegistry
from services.public.ads.config import AdsConfig
from services.public.ads.service import RankService

CHUNK = 512  # requests per rank_many call (its batching across requests, as a replica's)


def requests_for(events: pd.DataFrame) -> Iterator[ads_pb2.RankRequest]:
    """One request per logged impression: its item as the only candidate, bid 1 micro."""
    for row, item in enumerate(events["item_id"].astype(str)):
        yield ads_pb2.RankRequest(
            request_id=f"impression-{row}",
            context=ads_pb2.RankContext(placement_id="offline-evaluation", slot_count=1),
            candidates=[
                ads_pb2.Candidate(
                    ad_id=f"item-{item}", campaign_id="obd", item_id=item, cpc_bid_micros=1
                )
            ],
        )


def serving_scores(onnx: bytes, manifest: dict[str, Any], events: pd.DataFrame) -> np.ndarray:
    """pCTR per row of `events` (needs `item_id`) through the ranking service."""
    with tempfile.TemporaryDirectory(prefix="isthmus-eval-") as scratch:
        root = Path(scratch)
        ModelRegistry(root / "models").publish(onnx, dict(manifest))
        (root / "rules.yaml").write_text("rules: []\n")
        service = RankService(
            AdsConfig(
                registry_dir=root / "models",
                rules_file=root / "rules.yaml",
                features_dir=None,
                base_dir=root,
            )
        )
        scores: list[float] = []
        pending: list[ads_pb2.RankRequest] = []
        for request in requests_for(events):
            pending.append(request)
            if len(pending) == CHUNK:
                scores += _score(service, pending)
                pending = []
        scores += _score(service, pending) if pending else []
    return np.asarray(scores, dtype=np.float64)


def _score(service: RankService, requests: list[ads_pb2.RankRequest]) -> list[float]:
    out = []
    for request, answer in zip(requests, service.rank_many(requests), strict=True):
        if isinstance(answer, Exception):
            raise ValueError(f"the ranking service refused {request.request_id}: {answer}")
        if len(answer.ads) != 1:
            raise ValueError(f"the ranking service did not score {request.request_id}")
        out.append(answer.ads[0].pctr)
    return out
