"""Decision rules: loading, contradiction detection, and what each kind does to a ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isthmus.ads.v1 import ads_pb2
from services.public.ads import ranking
from services.public.ads.rules import RulesError, load_rules, parse_rules

RULES = """
rules:
  - {name: age, kind: compliance, priority: 1000, categories: [alcohol]}
  - {name: spent, kind: budget, priority: 900, campaigns: [c-spent]}
  - {name: house, kind: allow, priority: 500, match: {advertisers: [house]}}
  - {name: unsafe, kind: exclude, priority: 400, match: {categories: [hate]}}
  - name: no-fr-gambling
    kind: exclude
    priority: 300
    match: {categories: [gambling], regions: [FR]}
  - {name: two-each, kind: diversity, priority: 100, max_per_category: 2}
"""


def cand(ad: str, bid: int = 1000, campaign: str = "c1", advertiser: str = "adv", cats=()):
    return ads_pb2.Candidate(
        ad_id=ad,
        campaign_id=campaign,
        advertiser_id=advertiser,
        cpc_bid_micros=bid,
        categories=list(cats),
    )


def request(cands, age=ads_pb2.AGE_BAND_ADULT, region="DE", slots=10):
    return ads_pb2.RankRequest(
        request_id="r1",
        context=ads_pb2.RankContext(
            placement_id="home", slot_count=slots, age_band=age, region_code=region
        ),
        candidates=cands,
    )


def run(req, rules_text=RULES, pctr=None):
    rules = parse_rules(rules_text, Path("."))
    scores = np.full(len(req.candidates), 0.01) if pctr is None else np.array(pctr)
    return ranking.decide(req, scores, rules, "v0001-test")


def excluded(response) -> dict[str, str]:
    return {e.ad_id: e.rule for e in response.exclusions}


@pytest.mark.parametrize("age", [ads_pb2.AGE_BAND_UNDER_18, ads_pb2.AGE_BAND_UNSPECIFIED])
def test_restricted_categories_never_reach_minors_or_unknown_ages(age: int) -> None:
    response = run(request([cand("beer", 9000, cats=["alcohol"]), cand("shoe")], age=age))
    assert [a.ad_id for a in response.ads] == ["shoe"]
    assert excluded(response) == {"beer": "age"}


def test_verified_adults_may_see_restricted_categories() -> None:
    response = run(request([cand("beer", 9000, cats=["alcohol"]), cand("shoe")]))
    assert [a.ad_id for a in response.ads] == ["beer", "shoe"]


def test_an_allow_rule_cannot_override_compliance_even_for_house_ads() -> None:
    house_beer = cand("hb", advertiser="house", cats=["alcohol"])
    response = run(request([house_beer], age=ads_pb2.AGE_BAND_UNDER_18))
    assert excluded(response) == {"hb": "age"}


def test_allow_exempts_from_lower_exclusions_only() -> None:
    response = run(
        request([cand("h", advertiser="house", cats=["hate"]), cand("x", cats=["hate"])])
    )
    assert [a.ad_id for a in response.ads] == ["h"]
    assert excluded(response) == {"x": "unsafe"}


def test_budget_and_regional_exclusions() -> None:
    cands = [cand("a", campaign="c-spent"), cand("g", cats=["gambling"]), cand("ok")]
    in_fr = run(request(cands, region="FR"))
    assert excluded(in_fr) == {"a": "spent", "g": "no-fr-gambling"}
    in_de = run(request(cands, region="DE"))
    assert excluded(in_de) == {"a": "spent"}


def test_diversity_caps_a_category_and_ranks_by_ecpm() -> None:
    cands = [cand(f"s{i}", bid=1000 + i, cats=["shoes"]) for i in range(4)] + [cand("b", 10)]
    response = run(request(cands, slots=3))
    assert [a.ad_id for a in response.ads] == ["s3", "s2", "b"]
    assert [a.position for a in response.ads] == [1, 2, 3]
    assert excluded(response) == {"s1": "two-each", "s0": "two-each"}
    assert response.ads[0].ecpm_micros == pytest.approx(0.01 * 1003 * 1000)


def test_ecpm_not_bid_orders_the_answer() -> None:
    response = run(request([cand("cheap", 1000), cand("dear", 5000)]), pctr=[0.05, 0.001])
    assert [a.ad_id for a in response.ads] == ["cheap", "dear"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (
            "rules:\n"
            " - {name: a, kind: allow, priority: 5, match: {campaigns: [x]}}\n"
            " - {name: b, kind: exclude, priority: 5, match: {campaigns: [x, y]}}\n",
            ("'a'", "'b'", "priority 5"),
        ),
        (
            "rules:\n"
            " - {name: kids, kind: compliance, priority: 10, categories: [toys-18]}\n"
            " - {name: vip, kind: allow, priority: 20, match: {advertisers: [v]}}\n",
            ("'vip'", "'kids'", "compliance must outrank"),
        ),
        (
            "rules:\n"
            " - {name: d1, kind: diversity, priority: 1, max_per_category: 2}\n"
            " - {name: d2, kind: diversity, priority: 2, max_per_category: 3}\n",
            ("'d1'", "'d2'"),
        ),
    ],
)
def test_contradictory_rules_are_refused_by_name(text: str, names: tuple[str, ...]) -> None:
    with pytest.raises(RulesError, match="contradictory") as caught:
        parse_rules(text, Path("."))
    for name in names:
        assert name in str(caught.value)


def test_disjoint_allow_and_exclude_at_one_priority_are_fine() -> None:
    text = (
        "rules:\n"
        " - {name: a, kind: allow, priority: 5, match: {campaigns: [x]}}\n"
        " - {name: b, kind: exclude, priority: 5, match: {campaigns: [y]}}\n"
    )
    assert len(parse_rules(text, Path(".")).rules) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n - {name: a, kind: exclude, priority: 1}\n", "non-empty match"),
        ("rules:\n - {name: a, kind: compliance, priority: 1, categories: []}\n", "categories"),
        ("rules:\n - {name: a, kind: diversity, priority: 1}\n", "max_per_category"),
        ("rules:\n - {name: a, kind: budget, priority: 1, max_per_category: 2}\n", "does not take"),
        (
            "rules:\n - {name: Bad Name, kind: diversity, priority: 1, max_per_category: 1}\n",
            "name",
        ),
        ("rules:\n - {name: a, kind: teleport, priority: 1}\n", "kind"),
        (
            "rules:\n - {name: a, kind: diversity, priority: 1, max_per_category: 1}\n"
            " - {name: a, kind: diversity, priority: 2, max_per_category: 1}\n",
            "duplicate rule names: a",
        ),
        ("rules: [\n", "rules"),
    ],
)
def test_invalid_rules_files_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        parse_rules(text, Path("."))


def test_budget_file_is_read_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "budgets").mkdir()
    (tmp_path / "budgets" / "spent.txt").write_text("# spent today\nc9\n\nc7  # overspent\n")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        "rules:\n - {name: s, kind: budget, priority: 1, campaigns_file: budgets/spent.txt}\n"
    )
    assert load_rules(rules_file, tmp_path).exhausted == {"s": frozenset({"c7", "c9"})}


def test_the_shipped_rules_file_loads() -> None:
    shipped = Path(ranking.__file__).with_name("rules.yaml")
    rules = load_rules(shipped, Path("/nonexistent"))  # a missing budget file = nothing spent
    assert "alcohol" in rules.restricted_categories()
    assert rules.diversity is not None
