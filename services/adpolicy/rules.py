"""Decision rules for ad answers: declared in a YAML file, checked when loaded, pure.

Kinds of rule:
- `compliance`: ads in the listed categories are shown only to verified adults; minors and
  viewers of unknown age never see them. Nothing may override it.
- `budget`: campaigns whose budget is exhausted are not shown. Campaigns listed inline apply
  everywhere; a `campaigns_file` (rewritten by the billing side) is read by the ranking
  service only (services/public/ads/rules.py), so a degraded answer may show an ad whose
  budget ran out, never one that compliance or an exclusion forbids.
- `exclude`: ads matching the selector are not shown (brand safety, blocked advertisers,
  regional restrictions).
- `allow`: ads matching the selector are exempt from every lower-priority exclusion.
- `diversity`: at most `max_per_category` ads of one category in an answer (applied by the
  ranking service to its ranked list).

Per candidate, the candidate-level rules are tried from the highest priority down and the first
one that matches decides (exclude it, or allow it and stop): `screen`, the one evaluation both
the ranking service and the gateway's degraded answer use. Rule sets that cannot be decided are
refused at load with the rules named: an `allow` and an exclusion at the same priority that
can match the same ad, an `allow` placed above a compliance rule it could override, and two
diversity rules with different caps.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from isthmus.ads.v1 import ads_pb2

# The rules file shipped with the ranking service: the default of both the ranking service's
# `AdsConfig.rules_file` and the gateway's `GatewayConfig.rules_file`.
SHIPPED_RULES_FILE = Path(__file__).resolve().parents[1] / "public" / "ads" / "rules.yaml"


class RulesError(ValueError):
    """The rules file is unreadable, invalid or contradictory (the message names the file)."""


class RuleKind(enum.StrEnum):
    COMPLIANCE = "compliance"
    BUDGET = "budget"
    EXCLUDE = "exclude"
    ALLOW = "allow"
    DIVERSITY = "diversity"


EXCLUDING = {RuleKind.COMPLIANCE, RuleKind.BUDGET, RuleKind.EXCLUDE}


class Selector(BaseModel):
    """Which ads a rule is about. Every non-empty list must match; empty lists match anything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ads: frozenset[str] = frozenset()
    campaigns: frozenset[str] = frozenset()
    advertisers: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    regions: frozenset[str] = Field(
        default=frozenset(), description="Viewer regions (ISO 3166-1 alpha-2) it applies in."
    )

    def matches(self, candidate: ads_pb2.Candidate, region: str) -> bool:
        return (
            (not self.ads or candidate.ad_id in self.ads)
            and (not self.campaigns or candidate.campaign_id in self.campaigns)
            and (not self.advertisers or candidate.advertiser_id in self.advertisers)
            and (not self.categories or not self.categories.isdisjoint(candidate.categories))
            and (not self.regions or region in self.regions)
        )

    def overlaps(self, other: Selector) -> bool:
        """Could one ad match both? Only a field where both list values, disjointly, rules it
        out."""
        for name in ("ads", "campaigns", "advertisers", "categories", "regions"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine and theirs and mine.isdisjoint(theirs):
                return False
        return True


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")
    kind: RuleKind
    priority: int = Field(ge=0, le=1_000_000, description="Higher is tried first.")
    description: str = ""
    match: Selector = Field(default_factory=Selector)
    categories: frozenset[str] = Field(
        default=frozenset(), description="compliance: the age-restricted categories."
    )
    campaigns: frozenset[str] = Field(
        default=frozenset(), description="budget: exhausted campaigns listed inline."
    )
    campaigns_file: Path | None = Field(
        default=None,
        description="budget: a file of exhausted campaign ids, one per line (read by the "
        "ranking service only).",
    )
    max_per_category: int | None = Field(default=None, ge=1, description="diversity: the cap.")

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> Self:
        wants = {
            RuleKind.COMPLIANCE: {"categories"},
            RuleKind.BUDGET: {"campaigns", "campaigns_file"},
            RuleKind.EXCLUDE: {"match"},
            RuleKind.ALLOW: {"match"},
            RuleKind.DIVERSITY: {"max_per_category"},
        }[self.kind]
        given = {
            n
            for n in ("match", "categories", "campaigns", "campaigns_file", "max_per_category")
            if n in self.model_fields_set
        }
        stray = given - wants
        if stray:
            raise ValueError(f"a {self.kind} rule does not take {', '.join(sorted(stray))}")
        if self.kind is RuleKind.COMPLIANCE and not self.categories:
            raise ValueError("a compliance rule needs categories")
        if self.kind is RuleKind.DIVERSITY and self.max_per_category is None:
            raise ValueError("a diversity rule needs max_per_category")
        if self.kind in (RuleKind.EXCLUDE, RuleKind.ALLOW) and self.match == Selector():
            raise ValueError(f"a {self.kind} rule needs a non-empty match")
        return self

    def selector(self) -> Selector:
        """What the rule can match, for contradiction checks (budget lists may change at run
        time, so a file-backed budget rule is taken to match any campaign)."""
        if self.kind is RuleKind.COMPLIANCE:
            return Selector(categories=self.categories)
        if self.kind is RuleKind.BUDGET:
            listed = self.campaigns if self.campaigns_file is None else frozenset()
            return Selector(campaigns=listed)
        return self.match


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list)


def contradictions(rules: Sequence[Rule]) -> list[str]:
    """Every pair of rules that cannot both hold, described by name (empty when none)."""
    found: list[str] = []
    allows = [r for r in rules if r.kind is RuleKind.ALLOW]
    for allow in allows:
        for other in rules:
            if other.kind not in EXCLUDING or not allow.selector().overlaps(other.selector()):
                continue
            if other.kind is RuleKind.COMPLIANCE and allow.priority >= other.priority:
                found.append(
                    f"allow rule {allow.name!r} (priority {allow.priority}) could show ads that "
                    f"compliance rule {other.name!r} (priority {other.priority}) forbids; "
                    "compliance must outrank every allow rule that overlaps it"
                )
            elif allow.priority == other.priority:
                found.append(
                    f"rules {allow.name!r} and {other.name!r} share priority {allow.priority} "
                    f"but one allows and the other excludes the same ads"
                )
    caps = [r for r in rules if r.kind is RuleKind.DIVERSITY]
    for i, first in enumerate(caps):
        for second in caps[i + 1 :]:
            if first.max_per_category != second.max_per_category:
                found.append(
                    f"diversity rules {first.name!r} and {second.name!r} set different caps "
                    f"({first.max_per_category} and {second.max_per_category})"
                )
    return found


@dataclass(frozen=True)  # not slots: cached_property needs the instance dict
class RuleSet:
    """Validated rules, sorted for evaluation, plus the budget lists they read. Two rule sets
    are equal when they would decide alike (a reload can tell whether rules changed)."""

    rules: tuple[Rule, ...]
    exhausted: dict[str, frozenset[str]] = field(default_factory=dict)  # rule -> campaigns

    @functools.cached_property
    def candidate_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind is not RuleKind.DIVERSITY)

    @property
    def diversity(self) -> Rule | None:
        return next((r for r in self.rules if r.kind is RuleKind.DIVERSITY), None)

    def restricted_categories(self) -> frozenset[str]:
        out: frozenset[str] = frozenset()
        for rule in self.rules:
            if rule.kind is RuleKind.COMPLIANCE:
                out |= rule.categories
        return out


def parse_rules(text: str, source: str = "rules") -> RuleSet:
    """Validate a rules document (YAML); raises RulesError naming `source`. Budget rules carry
    their inline campaigns; file-backed lists are added by the ranking service."""
    try:
        document = RulesFile.model_validate(yaml.safe_load(text) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise RulesError(f"{source}: {exc}") from exc
    names = [r.name for r in document.rules]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise RulesError(f"{source}: duplicate rule names: {', '.join(repeated)}")
    problems = contradictions(document.rules)
    if problems:
        raise RulesError(f"{source}: contradictory rules: " + "; ".join(problems))
    ordered = tuple(sorted(document.rules, key=lambda r: (-r.priority, r.name)))
    exhausted = {r.name: r.campaigns for r in ordered if r.kind is RuleKind.BUDGET}
    return RuleSet(ordered, exhausted)


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rules file; raises RulesError naming the file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise RulesError(f"rules file {path} is unreadable: {exc}") from exc
    return parse_rules(text, f"rules file {path}")


def screen(
    candidates: Sequence[ads_pb2.Candidate], context: ads_pb2.RankContext, rules: RuleSet
) -> tuple[list[int], list[tuple[str, str]]]:
    """Candidate-level rules: (indices still eligible, [(ad_id, rule name)] excluded)."""
    adult = context.age_band == ads_pb2.AGE_BAND_ADULT
    region = context.region_code
    eligible: list[int] = []
    excluded: list[tuple[str, str]] = []
    for index, candidate in enumerate(candidates):
        verdict = _first_decision(candidate, adult, region, rules)
        if verdict is None:
            eligible.append(index)
        else:
            excluded.append((candidate.ad_id, verdict))
    return eligible, excluded


def _first_decision(
    candidate: ads_pb2.Candidate, adult: bool, region: str, rules: RuleSet
) -> str | None:
    for rule in rules.candidate_rules:
        if rule.kind is RuleKind.COMPLIANCE:
            if not adult and not rule.categories.isdisjoint(candidate.categories):
                return rule.name
        elif rule.kind is RuleKind.BUDGET:
            if candidate.campaign_id in rules.exhausted.get(rule.name, frozenset()):
                return rule.name
        elif rule.match.matches(candidate, region):
            return None if rule.kind is RuleKind.ALLOW else rule.name
    return None
