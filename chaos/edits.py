"""Edits of a drill's experiment before it runs (pure): its configuration values replaced
(`--var`), and protections switched off (`--without`) to show the drill can fail.

A protection is what the platform does to keep a drill green; switching it off prepends an
action to the method (its rollback switches it on again), or, for the callers' own retry
policy, changes only the drill's load (runner.run_drill).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Protection:
    """A protection a drill can switch off: what it is, and the action that switches it off
    for one drill (None: only the runner's own callers change) with its arguments; the
    rollback switches it on again."""

    what: str
    action: str | None = None  # "module:function"
    arguments: dict[str, Any] = field(default_factory=dict)
    settle_s: float = 0.0  # load run with it off before the drill's fault


def _gateway(what: str, name: str) -> Protection:
    """A gateway protection: every instance reconfigured, one at a time."""
    return Protection(what, "chaos.local.actions:switch_off_protection", {"protection": name})


# "retries" also stops the drill's callers retrying, "client-retries" only that (run_drill).
PROTECTIONS: dict[str, Protection] = {
    "retries": _gateway("the gateway's and the callers' retries", "retries"),
    "client-retries": Protection("the callers' retry policy (the shipped service config)"),
    "ejection": _gateway("outlier ejection beyond 10% of a cluster", "ejection"),
    "failover": _gateway("failover from the first public zone to the next", "failover"),
    "per-try-timeout": _gateway("the gateway's per-try timeouts", "per-try-timeout"),
    "fallback": _gateway("the gateway's bid-only Rank answers (route fallbacks)", "fallback"),
    "restarts": Protection(
        "the supervisor's restarts of what exits", "chaos.local.actions:switch_off_restarts"
    ),
    "durable-commits": Protection(
        "the database's durable commits",
        "chaos.local.database:switch_off_durable_commits",
        settle_s=4.0,  # orders acknowledged (not yet on disk) before the stop
    ),
    "checkpoint": Protection(
        "the sync's checkpoints and commit logs", "chaos.local.sync:switch_off_checkpoint"
    ),
    "completeness": Protection(
        "the sync's check that a committed batch read every file it planned",
        "chaos.local.sync:switch_off_completeness",
    ),
}


def without(experiment: dict[str, Any], protections: list[str]) -> dict[str, Any]:
    """The experiment with `protections` switched off first (see PROTECTIONS). Pure."""
    unknown = sorted(set(protections) - set(PROTECTIONS))
    if unknown:
        raise ValueError(f"unknown protection {unknown}; known: {', '.join(PROTECTIONS)}")
    edited = copy.deepcopy(experiment)
    switches = []
    for name in protections:
        protection = PROTECTIONS[name]
        if protection.action is None:
            continue
        module, func = protection.action.split(":")
        switch: dict[str, Any] = {
            "type": "action",
            "name": f"switch off {protection.what}",
            "provider": {
                "type": "python",
                "module": module,
                "func": func,
                "arguments": {**protection.arguments, "run_dir": "${run_dir}"},
            },
        }
        if protection.settle_s:
            switch["pauses"] = {"after": protection.settle_s}
        switches.append(switch)
    edited["method"] = switches + edited["method"]
    return edited


def with_variables(experiment: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """The experiment with some of its `configuration` values replaced (Chaos Toolkit's
    `--var`): only keys the drill declares, and never `run_dir` (the CLI's own). Pure."""
    declared = set(experiment.get("configuration", {})) - {"run_dir"}
    unknown = sorted(set(variables) - declared)
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise ValueError(f"the drill has no variable {unknown}; it has: {known}")
    edited = copy.deepcopy(experiment)
    edited["configuration"].update(variables)
    return edited
