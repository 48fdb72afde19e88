"""AdService/Rank's answer when no public zone can rank: order by bid alone (pure).

The `ads_bid_only` fallback of fallbacks.py. Candidates are screened by the ad policy the
ranking service applies (`services.adpolicy.screen`: compliance by age band, exclusions,
allow rules, inline budget lists), read from the same rules file (`GatewayConfig.rules_file`,
by default the ranking service's rules.yaml), so a degraded answer can be less relevant than a
ranked one but never less safe. What only the ranking service has is not applied: the budget
files billing rewrites (an ad whose budget ran out may be shown), pCTR and the diversity cap.
Exclusions name the rule that decided, as in a ranked answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from isthmus.ads.v1 import ads_pb2
from services.adpolicy import RuleSet, load_rules, screen
from services.gateway.config import GatewayConfig

RANK_METHOD = "/isthmus.ads.v1.AdService/Rank"


@dataclass(frozen=True)
class BidOnly:
    """The prepared hook: the rules read once per configuration. Equal when the rules are, so
    a reload can tell that the rules file changed."""

    rules: RuleSet

    def __call__(self, request: bytes) -> bytes:
        parsed = ads_pb2.RankRequest.FromString(request)
        answer: bytes = bid_only_ranking(parsed, self.rules).SerializeToString()
        return answer


def prepare(config: GatewayConfig) -> BidOnly:
    """Read the config's rules file; RulesError (a ValueError) names the file."""
    return BidOnly(load_rules(config.rules_file))


def bid_only_ranking(request: ads_pb2.RankRequest, rules: RuleSet) -> ads_pb2.RankResponse:
    response = ads_pb2.RankResponse(
        request_id=request.request_id,
        degraded=True,
        degraded_reason=ads_pb2.DEGRADED_REASON_NO_MODEL_AVAILABLE,
    )
    indices, excluded = screen(request.candidates, request.context, rules)
    eligible = [request.candidates[i] for i in indices]
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
    for ad_id, rule in excluded:
        response.exclusions.add(ad_id=ad_id, rule=rule)
    return response
