"""One ad policy, two paths: the ranking service's answer and the gateway's bid-only answer
(when no public zone can rank) must screen candidates alike. The grid is built from the rules
file itself, so a category, advertiser, region or rule added to rules.yaml is covered here
without editing this test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from isthmus.ads.v1 import ads_pb2
from services.adpolicy import SHIPPED_RULES_FILE, RuleKind, RuleSet
from services.adpolicy import load_rules as load_policy
from services.gateway.config import GatewayConfig
from services.gateway.fallbacks import FALLBACKS, Answer
from services.public.ads import ranking
from services.public.ads.config import AdsConfig
from services.public.ads.rules import load_rules as load_ranking_rules

SPENT = "camp-spent-per-billing"  # listed only in the budget files billing rewrites
AGE_BANDS = list(ads_pb2.AgeBand.values())


def gateway_answer(config: GatewayConfig) -> Answer:
    return FALLBACKS["ads_bid_only"].prepare(config)


def degraded(answer: Answer, request: ads_pb2.RankRequest) -> ads_pb2.RankResponse:
    return ads_pb2.RankResponse.FromString(answer(request.SerializeToString()))


def named(rules: RuleSet, field: str) -> set[str]:
    """Every value the rules name for one selector field (compliance and inline budget lists
    count as categories and campaigns)."""
    out: set[str] = set()
    for rule in rules.rules:
        out |= getattr(rule.match, field)
        if field == "categories":
            out |= rule.categories
        if field == "campaigns":
            out |= rule.campaigns
    return out


def candidates(rules: RuleSet) -> list[ads_pb2.Candidate]:
    """Each named category (alone and all together) from each named advertiser and a plain
    one, each named campaign and ad id, and an ad whose campaign billing says is spent."""
    categories = sorted(named(rules, "categories"))
    advertisers = [*sorted(named(rules, "advertisers")), "adv-plain"]
    out: list[ads_pb2.Candidate] = []
    bid = 1000
    for advertiser in advertisers:
        for cats in [[c] for c in [*categories, "shoes"]] + [categories]:
            bid += 7
            out.append(
                ads_pb2.Candidate(
                    ad_id=f"{advertiser}-{'+'.join(cats)}",
                    campaign_id="camp-plain",
                    advertiser_id=advertiser,
                    cpc_bid_micros=bid,
                    categories=cats,
                )
            )
    for campaign in [*sorted(named(rules, "campaigns")), SPENT]:
        out.append(
            ads_pb2.Candidate(ad_id=f"in-{campaign}", campaign_id=campaign, cpc_bid_micros=5)
        )
    for ad in sorted(named(rules, "ads")):
        out.append(ads_pb2.Candidate(ad_id=ad, campaign_id="camp-plain", cpc_bid_micros=5))
    return out


def requests(rules: RuleSet) -> Iterator[ads_pb2.RankRequest]:
    cands = candidates(rules)
    for age in AGE_BANDS:
        for region in ["", "ZZ", *sorted(named(rules, "regions"))]:
            yield ads_pb2.RankRequest(
                request_id="r1",
                context=ads_pb2.RankContext(
                    placement_id="home", slot_count=5, age_band=age, region_code=region
                ),
                candidates=cands,
                max_results=len(cands),  # top-k must not hide what the rules decided
            )


@pytest.fixture
def ranking_rules(tmp_path: Path) -> RuleSet:
    """The ranking service's rules as a replica loads them, with billing's budget files."""
    rules_file = AdsConfig().rules_file
    for rule in load_policy(rules_file).rules:
        if rule.campaigns_file is not None:
            budget = tmp_path / rule.campaigns_file
            budget.parent.mkdir(parents=True, exist_ok=True)
            budget.write_text(f"{SPENT}\n")
    return load_ranking_rules(rules_file, tmp_path)


def test_both_paths_read_the_same_rules_file_by_default() -> None:
    gateway = GatewayConfig(clusters=[], routes=[])
    assert gateway.rules_file == AdsConfig().rules_file == SHIPPED_RULES_FILE
    assert SHIPPED_RULES_FILE.is_file()


def test_degraded_answers_screen_candidates_exactly_as_the_ranking_service(
    ranking_rules: RuleSet,
) -> None:
    answer = gateway_answer(GatewayConfig(clusters=[], routes=[]))
    kinds = {r.name: r.kind for r in ranking_rules.rules}
    fired: set[str] = set()
    for request in requests(ranking_rules):
        where = f"age_band={request.context.age_band} region={request.context.region_code!r}"
        pctr = np.full(len(request.candidates), 0.01)
        ranked = ranking.decide(request, pctr, ranking_rules, "v-test")
        screened_out = {
            e.ad_id: e.rule for e in ranked.exclusions if kinds[e.rule] is not RuleKind.DIVERSITY
        }
        fired |= set(screened_out.values())
        bid_only = degraded(answer, request)
        shown = {a.ad_id for a in bid_only.ads}
        dropped = {e.ad_id: e.rule for e in bid_only.exclusions}
        assert bid_only.degraded
        assert shown.isdisjoint(dropped)
        assert shown | dropped.keys() == {c.ad_id for c in request.candidates}, where
        for candidate in request.candidates:
            ad, rule = candidate.ad_id, screened_out.get(candidate.ad_id)
            if (
                rule is not None
                and kinds[rule] is RuleKind.BUDGET
                and candidate.campaign_id == SPENT
            ):
                continue  # billing's files are the ranking service's alone (see degraded.py)
            # Shown by the gateway => allowed by the ranking service, and every compliance,
            # exclusion (or inline budget) verdict of the ranking service is the gateway's too.
            assert dropped.get(ad) == rule, (
                f"{ad} ({where}): ranking {rule}, degraded {dropped.get(ad)}"
            )
    # The grid reached every rule that can drop an ad, so no rule of the file goes untested.
    droppers = {
        r.name
        for r in ranking_rules.rules
        if r.kind in (RuleKind.COMPLIANCE, RuleKind.EXCLUDE, RuleKind.BUDGET)
    }
    assert droppers <= fired, f"rules the grid never exercised: {sorted(droppers - fired)}"


def test_allow_rules_spare_the_same_ads_in_both_paths(ranking_rules: RuleSet) -> None:
    """Every allow rule that outranks an exclusion exempts some ad of the grid in the degraded
    answer (the test above shows the ranking service agrees; this shows the grid has them)."""
    answer = gateway_answer(GatewayConfig(clusters=[], routes=[]))
    allows = [r for r in ranking_rules.rules if r.kind is RuleKind.ALLOW]
    below = {
        allow.name: [
            r
            for r in ranking_rules.rules
            if r.kind is RuleKind.EXCLUDE
            and r.priority < allow.priority
            and r.match.overlaps(allow.match)
        ]
        for allow in allows
    }
    spared: set[str] = set()
    for request in requests(ranking_rules):
        if request.context.age_band != ads_pb2.AGE_BAND_ADULT:
            continue  # compliance outranks every allow rule: minors are the test above's
        shown = {a.ad_id for a in degraded(answer, request).ads}
        region = request.context.region_code
        for allow in allows:
            above = [
                r
                for r in ranking_rules.rules
                if r.kind is RuleKind.EXCLUDE and r.priority > allow.priority
            ]
            for candidate in request.candidates:
                excludable = any(r.match.matches(candidate, region) for r in below[allow.name])
                decided_above = any(r.match.matches(candidate, region) for r in above)
                if excludable and not decided_above and allow.match.matches(candidate, region):
                    assert candidate.ad_id in shown, (allow.name, candidate.ad_id)
                    spared.add(allow.name)
    assert spared == {name for name, rules in below.items() if rules}


@pytest.mark.parametrize("age", [ads_pb2.AGE_BAND_UNDER_18, ads_pb2.AGE_BAND_UNSPECIFIED])
@pytest.mark.parametrize("region", ["", "US", "DE"])
def test_a_minor_never_gets_a_weapons_ad_in_a_degraded_answer(age: int, region: str) -> None:
    answer = gateway_answer(GatewayConfig(clusters=[], routes=[]))
    request = ads_pb2.RankRequest(
        request_id="r1",
        context=ads_pb2.RankContext(
            placement_id="home", slot_count=3, age_band=age, region_code=region
        ),
        candidates=[
            ads_pb2.Candidate(
                ad_id="rifle", campaign_id="c1", cpc_bid_micros=9_000, categories=["weapons"]
            ),
            ads_pb2.Candidate(
                ad_id="house-knife",
                campaign_id="c2",
                advertiser_id="isthmus-house",
                cpc_bid_micros=8_000,
                categories=["outdoor", "weapons"],
            ),
            ads_pb2.Candidate(ad_id="shoe", campaign_id="c3", cpc_bid_micros=10),
        ],
    )
    response = degraded(answer, request)
    assert [a.ad_id for a in response.ads] == ["shoe"]
    assert {e.ad_id for e in response.exclusions} == {"rifle", "house-knife"}
    request.context.age_band = ads_pb2.AGE_BAND_ADULT  # the same ads, to a verified adult
    assert [a.ad_id for a in degraded(answer, request).ads] == ["rifle", "house-knife", "shoe"]
