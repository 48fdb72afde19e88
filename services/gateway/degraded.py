"""The answer to AdService/Rank when no public zone can: rank by bid alone (pure).

Compliance still holds: restricted categories are never shown unless the viewer is a
verified adult, so a degraded answer can be less relevant but never less safe.
"""

from __future__ import annotations

from isthmus.ads.v1 import ads_pb2


def bid_only_ranking(request: ads_pb2.RankRequest, restricted: set[str]) -> ads_pb2.RankResponse:
    adult = request.context.age_band == ads_pb2.AGE_BAND_ADULT
    response = ads_pb2.RankResponse(
        request_id=request.request_id,
        degraded=True,
        degraded_reason=ads_pb2.DEGRADED_REASON_NO_MODEL_AVAILABLE,
    )
    eligible = []
    for candidate in request.candidates:
        if not adult and restricted.intersection(candidate.categories):
            response.exclusions.add(ad_id=candidate.ad_id, rule="degraded-compliance")
        else:
            eligible.append(candidate)
    eligible.sort(key=lambda c: (-c.cpc_bid_micros, c.ad_id))
    limit = request.max_results or request.context.slot_count or len(eligible)
    for position, candidate in enumerate(eligible[:limit], start=1):
        response.ads.add(
            ad_id=candidate.ad_id,
            campaign_id=candidate.campaign_id,
            position=position,
            pctr=0.0,
            ecpm_micros=float(candidate.cpc_bid_micros * 1000),
        )
    return response
