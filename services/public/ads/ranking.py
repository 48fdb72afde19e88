"""The ranking decision for one request, as pure functions: validate, assemble the model's
inputs, and turn scores into an answer (eCPM = pCTR x bid, rules, top-k).

Candidates are screened by `services.adpolicy.screen`, the same evaluation the gateway's
bid-only answer uses when no public zone can rank; diversity (rules.py) needs the eCPM order
and stays here."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from isthmus.ads.v1 import ads_pb2
from services.adpolicy import RuleSet, screen
from services.core.validation import TOKEN, Violations
from services.models.features import Feature
from services.public.ads.rules import diversify

REGION = re.compile(r"^[A-Z]{2}$")
CATEGORY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _plausible(request: ads_pb2.RankRequest, max_candidates: int) -> bool:
    """A fast pass for the common case (a valid request): True only if `validate` would find
    nothing; on False, `validate` runs the full checks and names every problem."""
    ok = TOKEN.match
    context = request.context
    if not (
        request.HasField("context")
        and 0 < len(request.request_id) <= 128
        and ok(request.request_id)
        and len(request.pseudonymous_user_id) <= 64
        and (not request.pseudonymous_user_id or ok(request.pseudonymous_user_id))
        and 0 < len(context.placement_id) <= 128
        and ok(context.placement_id)
        and 1 <= context.slot_count <= 100
        and (not context.region_code or REGION.match(context.region_code))
        and request.max_results <= 1000
        and 1 <= len(request.candidates) <= max_candidates
    ):
        return False
    seen: set[str] = set()
    for c in request.candidates:
        if not (
            0 < len(c.ad_id) <= 128
            and ok(c.ad_id)
            and 0 < len(c.campaign_id) <= 128
            and ok(c.campaign_id)
            and len(c.advertiser_id) <= 128
            and (not c.advertiser_id or ok(c.advertiser_id))
            and len(c.item_id) <= 128
            and (not c.item_id or ok(c.item_id))
            and c.cpc_bid_micros > 0
            and all(len(x) <= 64 and CATEGORY.match(x) for x in c.categories)
        ):
            return False
        seen.add(c.ad_id)
    return len(seen) == len(request.candidates)


def validate(request: ads_pb2.RankRequest, max_candidates: int) -> None:
    """Raise InvalidArgument naming every problem (never echoing values)."""
    if _plausible(request, max_candidates):
        return
    v = Violations()
    v.token("request_id", request.request_id, max_len=128)
    v.token("pseudonymous_user_id", request.pseudonymous_user_id, required=False, max_len=64)
    if not request.HasField("context"):
        v.add("context", "is required")
    else:
        context = request.context
        v.token("context.placement_id", context.placement_id, max_len=128)
        if not 1 <= context.slot_count <= 100:
            v.add("context.slot_count", "must be 1 to 100")
        if context.region_code and not REGION.match(context.region_code):
            v.add("context.region_code", "must be two upper-case letters (ISO 3166-1 alpha-2)")
    if request.max_results > 1000:
        v.add("max_results", "must be at most 1000")
    count = len(request.candidates)
    if not 1 <= count <= max_candidates:
        v.add("candidates", f"must hold 1 to {max_candidates} entries (got {count})")
    seen: set[str] = set()
    for i, candidate in enumerate(request.candidates[:max_candidates]):
        where = f"candidates[{i}]"
        if v.token(f"{where}.ad_id", candidate.ad_id, max_len=128):
            if candidate.ad_id in seen:
                v.add(f"{where}.ad_id", "repeats an earlier candidate's ad_id")
            seen.add(candidate.ad_id)
        v.token(f"{where}.campaign_id", candidate.campaign_id, max_len=128)
        v.token(f"{where}.advertiser_id", candidate.advertiser_id, required=False, max_len=128)
        v.token(f"{where}.item_id", candidate.item_id, required=False, max_len=128)
        if candidate.cpc_bid_micros <= 0:
            v.add(f"{where}.cpc_bid_micros", "must be greater than 0")
        for j, category in enumerate(candidate.categories):
            if not CATEGORY.match(category) or len(category) > 64:
                v.add(f"{where}.categories[{j}]", "must be lower-case [a-z0-9_-], 1 to 64 chars")
        if len(v.items) > 50:
            break  # enough to fix; do not build a megabyte of errors
    v.raise_if_any()


@dataclass(frozen=True)
class ItemTable:
    """Item features as columns, one row per catalogue item plus a last row of defaults, so a
    request's item features are one gather per feature instead of a lookup per cell."""

    index: Mapping[str, int]
    columns: Mapping[str, np.ndarray]

    @classmethod
    def build(
        cls, schema: Sequence[Feature], items: Mapping[str, Mapping[str, str | float]]
    ) -> ItemTable:
        ids = sorted(items)
        columns: dict[str, np.ndarray] = {}
        for feature in schema:
            if feature.source != "catalogue":
                continue
            values = [items[i].get(feature.name, feature.default) for i in ids]
            values.append(feature.default)
            if feature.dtype == "string":
                columns[feature.name] = np.array([str(x) for x in values], dtype=object)
            else:
                columns[feature.name] = np.array(values, dtype=np.float32)
        return cls({item: row for row, item in enumerate(ids)}, columns)


def model_inputs(
    schema: Sequence[Feature],
    candidates: Sequence[ads_pb2.Candidate],
    items: ItemTable,
    user: Mapping[str, object] | None,
) -> dict[str, np.ndarray]:
    """One [N, 1] tensor per feature, N = number of candidates, from the feature's source
    (services.models.features): candidate fields, catalogue rows by item_id, the viewer's
    snapshot row, serving's fixed values; anything missing takes the schema's default."""
    n = len(candidates)
    missing = len(items.index)
    item_ids = [c.item_id for c in candidates]  # read once: the catalogue and the model use it
    rows = np.fromiter((items.index.get(i, missing) for i in item_ids), np.intp, n)
    inputs: dict[str, np.ndarray] = {}
    for feature in schema:
        if feature.source == "catalogue":
            inputs[feature.name] = items.columns[feature.name][rows].reshape(n, 1)
            continue
        if feature.source == "candidate":
            fields = (
                item_ids
                if feature.name == "item_id"
                else [getattr(c, feature.name) for c in candidates]
            )
            values = [v or str(feature.default) for v in fields]
            inputs[feature.name] = np.array(values, dtype=object).reshape(n, 1)
            continue
        value: object = feature.default
        if feature.source == "snapshot" and user is not None and user.get(feature.name) is not None:
            value = user[feature.name]
        if feature.dtype == "string":
            inputs[feature.name] = np.full((n, 1), str(value), dtype=object)
        else:
            number = float(value) if isinstance(value, int | float | str) else 0.0
            inputs[feature.name] = np.full((n, 1), number, dtype=np.float32)
    return inputs


def stack(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Inputs of several requests as one batch (rows concatenated per feature)."""
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def decide(
    request: ads_pb2.RankRequest,
    pctr: np.ndarray,
    rules: RuleSet,
    model_version: str,
) -> ads_pb2.RankResponse:
    """Scores to answer: rules screen candidates, eCPM orders them, diversity caps, top-k."""
    candidates = request.candidates
    eligible, excluded = screen(candidates, request.context, rules)
    ecpm = [float(pctr[i]) * candidates[i].cpc_bid_micros * 1000.0 for i in eligible]
    order = sorted(range(len(eligible)), key=lambda k: (-ecpm[k], candidates[eligible[k]].ad_id))
    ranked = [eligible[k] for k in order]
    limit = request.max_results or request.context.slot_count
    chosen, skipped = diversify(ranked, candidates, rules, limit)
    response = ads_pb2.RankResponse(request_id=request.request_id, model_version=model_version)
    for position, index in enumerate(chosen, start=1):
        candidate = candidates[index]
        p = float(pctr[index])
        response.ads.add(
            ad_id=candidate.ad_id,
            campaign_id=candidate.campaign_id,
            position=position,
            pctr=p,
            ecpm_micros=p * candidate.cpc_bid_micros * 1000.0,
        )
    for ad_id, rule in excluded + skipped:
        response.exclusions.add(ad_id=ad_id, rule=rule)
    return response
