"""Pure verdicts for chaos drills: is a probe's value within its tolerance, the per-probe
table over a drill's three phases (before, during and after the fault), and the drill's
overall verdict.

Tolerances are Chaos Toolkit's own (the `tolerance` of a steady-state probe), and `within`
delegates to chaoslib's `within_tolerance`, so a value judged here is judged as `chaos run`
judges it in the journal. We accept only the subset our drills use and refuse the rest
(ValueError), so a tolerance we cannot describe or evaluate purely never reaches a verdict:

- an exact scalar (bool, int or str): `value == tolerance`;
- `[low, high]`: numbers, inclusive at both ends;
- `{"type": "range", "range": [low, high], "target": key?}`: inclusive, compared as Decimal;
- `{"type": "regex", "pattern": p, "target": key?}`: `re.search`, after chaoslib's `${name}`
  substitution (no configuration here), which also turns `$$` into `$`.

Mirrored on purpose, so our table agrees with the journal: bool is an int (tolerance 1
accepts True, `[0, 5]` accepts True and False), and a dict value with a "status" key (an HTTP
provider's result) is judged by its status -- for a list, by membership, not as a range.

`{"type": "probe"}` (runs an activity) and `{"type": "jsonpath"}` (needs jsonpath2) are refused.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from numbers import Real
from typing import Any

from chaoslib.hypothesis import within_tolerance as _chaoslib_within

PHASES: tuple[str, ...] = ("before", "during", "after")


class Verdict(enum.StrEnum):
    """How a drill ended; the string value is what the result JSON and reports carry."""

    PASSED = "passed"  # every probe within tolerance and the platform verified restored
    DEVIATED = "deviated"  # a probe out of tolerance or not measured, or not restored
    ABORTED = "aborted"  # the abort floor was hit and the fault was rolled back early
    REFUSED = "refused"  # the topology does not allow this drill; nothing was touched
    ERROR = "error"  # an action or probe failed, so the measurements cannot be trusted
    INTERRUPTED = "interrupted"  # SIGINT/SIGTERM before the drill finished


def _is_number(x: object) -> bool:
    # bool is an int to Python, but a boolean bound is a mistake in a drill definition.
    return isinstance(x, Real) and not isinstance(x, bool)


def _check_bounds(tolerance: object, bounds: object) -> None:
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(map(_is_number, bounds))):
        raise ValueError(f"tolerance {tolerance!r}: bounds must be [low, high] numbers")
    low, high = bounds
    if low > high:
        raise ValueError(f"tolerance {tolerance!r}: low ({low}) must be <= high ({high})")


def check_tolerance(tolerance: object) -> None:
    """Raise ValueError, naming the tolerance, unless it is one of the supported forms."""
    if isinstance(tolerance, bool | int | str):
        return
    if isinstance(tolerance, list):
        _check_bounds(tolerance, tolerance)
        return
    if not isinstance(tolerance, dict):
        raise ValueError(f"tolerance {tolerance!r} is not supported (see chaos.verdict)")
    kind, target = tolerance.get("type"), tolerance.get("target")
    if target is not None and not isinstance(target, str):
        raise ValueError(f"tolerance {tolerance!r}: target must be a key (str)")
    if kind == "range":
        _check_bounds(tolerance, tolerance.get("range"))
    elif kind == "regex":
        pattern = tolerance.get("pattern")
        if not isinstance(pattern, str):
            raise ValueError(f"tolerance {tolerance!r}: pattern must be a string")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"tolerance {tolerance!r}: pattern does not compile: {exc}") from exc
    else:
        raise ValueError(f"tolerance type {kind!r} is not supported (in {tolerance!r})")


def within(value: object, tolerance: object) -> bool:
    """True when chaoslib would judge `value` within `tolerance`.

    A value chaoslib cannot compare (a string against numeric bounds, NaN or a missing
    target against a range, a number against a regex) raises inside chaoslib; here it is
    simply not within tolerance. ValueError for an unsupported tolerance.
    """
    check_tolerance(tolerance)
    try:
        return bool(_chaoslib_within(tolerance, value, configuration=None, secrets=None))
    except (TypeError, ArithmeticError, AttributeError):
        # ArithmeticError covers decimal.InvalidOperation (NaN in a range comparison).
        return False


def describe_tolerance(tolerance: object) -> str:
    """A short human form: '== 0', 'in [0.99, 1.0]', 'ratio in [0, 1]', 'matches /^ok$/'."""
    check_tolerance(tolerance)
    if isinstance(tolerance, list):
        return f"in [{tolerance[0]}, {tolerance[1]}]"
    if not isinstance(tolerance, dict):
        return f"== {tolerance!r}" if isinstance(tolerance, str) else f"== {tolerance}"
    prefix = f"{tolerance['target']} " if tolerance.get("target") else ""
    if tolerance["type"] == "range":
        low, high = tolerance["range"]
        return f"{prefix}in [{low}, {high}]"
    return f"{prefix}matches /{tolerance['pattern']}/"


@dataclass(frozen=True)
class ProbeRow:
    """One probe across a drill's phases. before/during/after hold the measured values
    (None: not measured in that phase); `ok` is the probe's verdict and `note` says why
    it is not ok, or which measured phases were not judged."""

    name: str
    tolerance: Any
    before: Any
    during: Any
    after: Any
    ok: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProbeRow:
        return cls(**data)


def probe_row(
    name: str,
    tolerance: object,
    values: Mapping[str, object],
    phases: Sequence[str] = PHASES,
) -> ProbeRow:
    """Judge one probe. `values` maps phase -> measured value (a phase may be absent).

    Only the phases in `phases` are judged: each must be measured (a None is *not* ok:
    a probe we could not measure has not shown the platform is fine) and within
    tolerance. A value measured in another phase is shown but not judged -- e.g. a
    recovery-time probe judged only "after", or a success ratio allowed to dip "during".
    """
    check_tolerance(tolerance)
    unknown = sorted(set(values) - set(PHASES)) + sorted(set(phases) - set(PHASES))
    if unknown or not phases:
        raise ValueError(f"probe {name!r}: phases must be among {PHASES}, got {unknown or phases}")
    missing = [p for p in PHASES if p in phases and values.get(p) is None]
    outside = [
        p for p in PHASES if p in phases and p not in missing and not within(values[p], tolerance)
    ]
    unjudged = [p for p in PHASES if p not in phases and values.get(p) is not None]
    notes = []
    if outside:
        notes.append("out of tolerance " + ", ".join(outside))
    if missing:
        notes.append("not measured " + ", ".join(missing))
    if unjudged:
        notes.append("not judged " + ", ".join(unjudged))
    return ProbeRow(
        name=name,
        tolerance=tolerance,
        before=values.get("before"),
        during=values.get("during"),
        after=values.get("after"),
        ok=not outside and not missing,
        note="; ".join(notes),
    )


def overall(
    rows: Iterable[ProbeRow],
    *,
    aborted: bool = False,
    refused: bool = False,
    error: str | None = None,
    interrupted: bool = False,
    restored: bool = True,
) -> Verdict:
    """The drill's verdict; the first that applies wins:

    refused (nothing ran, so nothing else can be true) > interrupted (the run is
    incomplete) > error (our own machinery failed, so the values cannot be trusted) >
    aborted (the safety floor was hit) > deviated > passed.

    A drill is deviated when any probe is not ok, when it could not verify the platform
    was restored afterwards, or when it has no probes at all (it checked nothing).
    """
    rows = list(rows)
    if refused:
        return Verdict.REFUSED
    if interrupted:
        return Verdict.INTERRUPTED
    if error is not None:
        return Verdict.ERROR
    if aborted:
        return Verdict.ABORTED
    if not rows or not restored or not all(r.ok for r in rows):
        return Verdict.DEVIATED
    return Verdict.PASSED


MIN_WINDOW_S = 1.0  # shorter fault windows are judged together with a neighbour they touch
TOUCHING_S = 0.05


def coalesce_windows(
    windows: Sequence[tuple[float, float]], min_s: float = MIN_WINDOW_S
) -> list[tuple[float, float]]:
    """Fault windows as a probe judges them "during": a window shorter than `min_s` is joined
    to the window it touches (the previous one, else the next), because a share over a
    fraction of a second holds a call or two -- one degraded answer of two in the 0.1 s
    between a loss ending and its latency being removed read as 50% degraded. Windows that
    do not touch stay apart. Pure."""
    out: list[tuple[float, float]] = []
    for start, end in windows:
        if out:
            prev_start, prev_end = out[-1]
            short = end - start < min_s or prev_end - prev_start < min_s
            if short and abs(start - prev_end) <= TOUCHING_S:
                out[-1] = (prev_start, max(prev_end, end))
                continue
        out.append((start, end))
    return out


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q% of values <= it.
    q in [0, 100]; q=0 gives the minimum; no values gives 0.0."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q ({q}) must be in [0, 100]")
    ordered = sorted(values)
    if not ordered:
        return 0.0
    # Exact arithmetic on q as written: in floats 0.99 * 100 is 99.00000000000001, whose
    # ceiling picks the next rank.
    rank = math.ceil(Fraction(str(q)) * len(ordered) / 100)
    return float(ordered[max(rank, 1) - 1])


def success_ratio(ok: int, total: int) -> float | None:
    """ok / total, or None when there were no calls: "not measured", which probe_row
    treats as not ok in a judged phase rather than a vacuous 1.0."""
    if ok < 0 or total < 0 or ok > total:
        raise ValueError(f"success_ratio: need 0 <= ok ({ok}) <= total ({total})")
    return ok / total if total else None
