"""The ranking service's side of the decision rules: what only it can apply.

The rule model, loading, contradiction checks and the candidate screen (compliance, budget,
exclude, allow) live in services/adpolicy/, shared with the gateway's degraded answer so both
decide alike. Here stay:
- budget files: the exhausted-campaign lists the billing side rewrites, read relative to the
  service's base directory and refreshed with the rules (services/public/ads/service.py);
- diversity: the per-category cap, applied to the list ranked by eCPM.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from isthmus.ads.v1 import ads_pb2
from services.adpolicy import rules as policy
from services.adpolicy.rules import RuleKind, RulesError, RuleSet

__all__ = [
    "RuleSet",
    "RulesError",
    "diversify",
    "load_rules",
    "parse_rules",
    "read_campaign_list",
    "with_budget_files",
]


def parse_rules(text: str, base_dir: Path, source: str = "rules") -> RuleSet:
    """Validate a rules document (YAML) and read its budget files; raises RulesError."""
    return with_budget_files(policy.parse_rules(text, source), base_dir)


def load_rules(path: Path, base_dir: Path | None = None) -> RuleSet:
    """Load a rules file and its budget files. Relative budget-file paths are relative to
    `base_dir` (default: the working directory, the repository root in local runs)."""
    return with_budget_files(policy.load_rules(path), base_dir or Path.cwd())


def with_budget_files(rules: RuleSet, base_dir: Path) -> RuleSet:
    """The same rules with each budget rule's `campaigns_file` added to its inline list."""
    exhausted = dict(rules.exhausted)
    for rule in rules.rules:
        if rule.kind is RuleKind.BUDGET and rule.campaigns_file is not None:
            listed = read_campaign_list(base_dir / rule.campaigns_file)
            exhausted[rule.name] = exhausted.get(rule.name, frozenset()) | listed
    return dataclasses.replace(rules, exhausted=exhausted)


def read_campaign_list(path: Path) -> frozenset[str]:
    """One campaign id per line; blank lines and # comments ignored. A missing file is an
    empty list (no campaign is exhausted yet)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return frozenset()
    except OSError as exc:
        raise RulesError(f"budget file {path} is unreadable: {exc}") from exc
    return frozenset(s for line in lines if (s := line.split("#", 1)[0].strip()))


def diversify(
    ranked: Sequence[int],
    candidates: Sequence[ads_pb2.Candidate],
    rules: RuleSet,
    limit: int,
) -> tuple[list[int], list[tuple[str, str]]]:
    """Take ranked indices best-first up to `limit`, skipping ads whose category is already
    at its cap. Returns (chosen, [(ad_id, rule)] skipped for diversity)."""
    rule = rules.diversity
    if rule is None or rule.max_per_category is None:
        return list(ranked[:limit]), []
    cap = rule.max_per_category
    shown: dict[str, int] = {}
    chosen: list[int] = []
    skipped: list[tuple[str, str]] = []
    for index in ranked:
        if len(chosen) == limit:
            break
        categories = set(candidates[index].categories)
        if any(shown.get(c, 0) >= cap for c in categories):
            skipped.append((candidates[index].ad_id, rule.name))
            continue
        chosen.append(index)
        for category in categories:
            shown[category] = shown.get(category, 0) + 1
    return chosen, skipped
