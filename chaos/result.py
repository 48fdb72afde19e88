"""A drill's result: what the runner records and the report reads (`<drill>.json`).

Plain JSON on disk; `DrillResult.from_dict` validates it on load (unknown keys are errors,
so a misspelt field fails loudly instead of showing up as "not measured"), and `to_dict`
gives it back as JSON-ready dicts. Times are seconds since the drill started, unless the
name says `_unix_s`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator

from chaos.verdict import ProbeRow, Verdict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimelinePoint(_Strict):
    """One 1-second bucket of the load the drill drove through the gateway."""

    t_s: float = Field(description="Start of the bucket, seconds since the drill started.")
    calls: NonNegativeInt = Field(description="Calls completed in this bucket.")
    errors: NonNegativeInt = Field(description="Calls that failed (any status but OK).")
    public_errors: NonNegativeInt = Field(description="Failed calls routed to public zones.")
    sensitive_errors: NonNegativeInt = Field(
        description="Failed calls of SENSITIVE methods (private zone)."
    )
    degraded: NonNegativeInt = Field(
        description="Calls answered OK but degraded (e.g. a bid-only ranking)."
    )
    p99_ms: float | None = Field(description="p99 latency in this bucket; None without calls.")
    replicas: NonNegativeInt | None = Field(description="Ranking replicas; None if unknown.")


class DrillEvent(_Strict):
    t_s: float = Field(description="Seconds since the drill started.")
    what: str = Field(description='What happened, e.g. "SIGKILL worker node 2 (pid 1234)".')


class Rollback(_Strict):
    name: str = Field(description="The rollback activity's name.")
    status: str = Field(description="chaoslib's run status: succeeded, failed, ...")


class Restoration(_Strict):
    ok: bool = Field(description="The platform's state after the drill matches before it.")
    differences: list[str] = Field(default_factory=list, description="What did not match.")


class DrillResult(_Strict):
    drill: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description="Drill id, e.g. public-nodes-30; also the report's file name.",
    )
    title: str = Field(description="One line saying what the drill does.")
    verdict: Verdict = Field(description="chaos.verdict.overall() of this run.")
    started_unix_s: float = Field(description="Wall-clock start, seconds since the epoch.")
    duration_s: float = Field(ge=0, description="Wall-clock length of the drill.")
    fault_windows: list[tuple[float, float]] = Field(
        default_factory=list, description="[start_s, end_s] of each fault, in order."
    )
    probes: list[ProbeRow] = Field(default_factory=list, description="The verdict table.")
    timeline: list[TimelinePoint] = Field(default_factory=list)
    events: list[DrillEvent] = Field(default_factory=list)
    recovery_s: float | None = Field(
        default=None, description="Fault end to steady state again; None: not measured."
    )
    failures: list[str] = Field(
        default_factory=list,
        description="What of the drill's own machinery failed (an action or probe of the "
        "method, or the load), each with its error: why the verdict is error.",
    )
    rollbacks: list[Rollback] = Field(default_factory=list)
    restored: Restoration = Field(description="The check after the rollbacks.")
    journal: str = Field(description="Path of Chaos Toolkit's journal.json for this run.")
    load_rps: float = Field(ge=0, description="Offered load, calls per second.")

    @field_validator("fault_windows")
    @classmethod
    def _windows_ordered(cls, windows: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for start_s, end_s in windows:
            if start_s > end_s:
                raise ValueError(f"fault window start ({start_s}) must be <= end ({end_s})")
        return windows

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrillResult:
        return cls.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def deviations(self) -> list[str]:
        """Names of the probes not ok, and "not restored" when the check failed."""
        names = [row.name for row in self.probes if not row.ok]
        return names if self.restored.ok else [*names, "not restored"]


def as_result(result: DrillResult | Mapping[str, Any]) -> DrillResult:
    """Accept either the model or its JSON dict (validated)."""
    return result if isinstance(result, DrillResult) else DrillResult.from_dict(result)
