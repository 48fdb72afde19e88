"""Ad policy: the decision rules every answer to AdService/Rank obeys, whoever gives it.

The ranking service (public zone) and the gateway's bid-only answer (when no public zone can
rank) both load the same rules file and screen candidates with the same function, so a
degraded answer can be less relevant than a ranked one but never less safe. Zone code may
not import another zone's modules and the gateway is not a zone, hence this foundation
package.

    rules.py  the rule model, loading and contradiction checks, and `screen` (pure)
"""

from services.adpolicy.rules import (
    SHIPPED_RULES_FILE,
    Rule,
    RuleKind,
    RulesError,
    RuleSet,
    Selector,
    load_rules,
    parse_rules,
    screen,
)

__all__ = [
    "SHIPPED_RULES_FILE",
    "Rule",
    "RuleKind",
    "RuleSet",
    "RulesError",
    "Selector",
    "load_rules",
    "parse_rules",
    "screen",
]
