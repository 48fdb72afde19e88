"""A drill's report: `<drill>.md` (verdict table, faults, recovery, rollbacks, restoration)
and `<drill>.png` (timeline), plus one summary table over several drills.

Values are formatted by the probe's name, which carries its unit (STYLE: units in names):
`*_ms` and `*_s` get 1 decimal, other floats (ratios) 4 decimals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from chaos.result import DrillResult, TimelinePoint, as_result
from chaos.verdict import PHASES, describe_tolerance

_NONE = "-"


def write_report(result: DrillResult | Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write `<drill>.md` and `<drill>.png` into out_dir (created); returns both paths."""
    drill = as_result(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, png_path = out_dir / f"{drill.drill}.md", out_dir / f"{drill.drill}.png"
    _chart(drill, png_path)
    md_path.write_text(render_markdown(drill, png_name=png_path.name))
    return md_path, png_path


def format_value(name: str, value: object) -> str:
    """A measured value for a table cell; `name` says the unit."""
    if value is None:
        return _NONE
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.1f}" if name.endswith(("_ms", "_s")) else f"{value:.4f}"
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value, default=str, separators=(",", ":"))


def _cell(text: str) -> str:
    # A pipe would end the cell early (regex tolerances such as /a|b/ have them).
    return text.replace("|", "\\|").replace("\n", " ")


def _seconds(value: float | None) -> str:
    return _NONE if value is None else f"{value:.1f} s"


def render_markdown(result: DrillResult | Mapping[str, Any], png_name: str = "") -> str:
    drill = as_result(result)
    started = datetime.fromtimestamp(drill.started_unix_s, tz=UTC)
    lines = [
        f"# Drill {drill.drill}: {drill.verdict.value}",
        "",
        drill.title,
        "",
        f"Started {started:%Y-%m-%d %H:%M:%S} UTC, lasted {drill.duration_s:.1f} s, "
        f"offered load {drill.load_rps:g} calls/s.",
        "",
        _verdict_line(drill),
        "",
        "## Probes",
        "",
        *_probe_table(drill),
        "",
        "## Faults and events",
        "",
        *_faults(drill),
        "",
        f"Recovery time: {_seconds(drill.recovery_s)}"
        + (" (not measured)" if drill.recovery_s is None else ""),
        "",
        "## Rollbacks",
        "",
        *_rollbacks(drill),
        "",
        "## Restoration check",
        "",
        *_restoration(drill),
        "",
        f"Chaos Toolkit journal: `{drill.journal}`",
    ]
    if png_name:
        lines += ["", f"![timeline]({png_name})"]
    return "\n".join(lines) + "\n"


def _verdict_line(drill: DrillResult) -> str:
    reasons = [f"{row.name} ({row.note})" for row in drill.probes if not row.ok]
    reasons += [f"failed: {failure}" for failure in drill.failures]
    if not drill.restored.ok:
        # overall() never passes a drill that could not verify the platform was restored.
        reasons.append("the platform was not verified restored, so the drill cannot pass")
    tail = ": " + "; ".join(reasons) if reasons else ""
    return f"Verdict: **{drill.verdict.value}**{tail}."


def _probe_table(drill: DrillResult) -> list[str]:
    if not drill.probes:
        return ["No probes were measured."]
    lines = [
        "| probe | tolerance | before | during | after | ok | note |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in drill.probes:
        values = [format_value(row.name, getattr(row, phase)) for phase in PHASES]
        cells = [row.name, describe_tolerance(row.tolerance), *values]
        cells += ["yes" if row.ok else "no", row.note]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _faults(drill: DrillResult) -> list[str]:
    windows = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in drill.fault_windows)
    lines = [f"Fault windows (seconds since start): {windows or 'none'}.", ""]
    if not drill.events:
        return [*lines, "No events recorded."]
    lines += ["| # | t (s) | event |", "|---:|---:|---|"]
    for i, event in enumerate(drill.events, start=1):
        lines.append(f"| {i} | {event.t_s:.1f} | {_cell(event.what)} |")
    return lines


def _rollbacks(drill: DrillResult) -> list[str]:
    if not drill.rollbacks:
        return ["No rollbacks ran."]
    lines = ["| rollback | status |", "|---|---|"]
    lines += [f"| {_cell(r.name)} | {_cell(r.status)} |" for r in drill.rollbacks]
    return lines


def _restoration(drill: DrillResult) -> list[str]:
    if drill.restored.ok:
        return ["The platform matches its state before the drill."]
    lines = ["**Not restored.** Differences from the state before the drill:", ""]
    lines += [f"- {d}" for d in drill.restored.differences] or ["- (none listed)"]
    return lines


def _in_fault(point: TimelinePoint, windows: Sequence[tuple[float, float]]) -> bool:
    # A bucket covers [t_s, t_s + 1): it is "during" a fault when it overlaps a window.
    return any(point.t_s < end and point.t_s + 1 > start for start, end in windows)


def p99_during_fault_ms(result: DrillResult | Mapping[str, Any]) -> float | None:
    """The worst 1-second p99 in any fault window (the buckets' own p99s cannot be merged
    into a true p99); None when no bucket with calls overlaps a fault."""
    drill = as_result(result)
    during = [
        p.p99_ms
        for p in drill.timeline
        if p.p99_ms is not None and _in_fault(p, drill.fault_windows)
    ]
    return max(during, default=None)


def summary_table(results: Iterable[DrillResult | Mapping[str, Any]]) -> str:
    """One Markdown row per drill: verdict, calls, failures, p99 in fault, recovery, and
    the names of the probes that deviated."""
    lines = [
        "| drill | verdict | calls | failed (public/sensitive) | p99 ms during fault "
        "| recovery s | deviations |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for drill in map(as_result, results):
        t = drill.timeline
        failed = (
            f"{sum(p.errors for p in t)} ({sum(p.public_errors for p in t)}/"
            f"{sum(p.sensitive_errors for p in t)})"
        )
        p99 = p99_during_fault_ms(drill)
        cells = [
            drill.drill,
            drill.verdict.value,
            str(sum(p.calls for p in t)),
            failed,
            _NONE if p99 is None else f"{p99:.1f}",
            _NONE if drill.recovery_s is None else f"{drill.recovery_s:.1f}",
            ", ".join(drill.deviations()) or _NONE,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _series(values: Iterable[float | int | None]) -> list[float]:
    # NaN leaves a gap in the line where a value was not measured.
    return [math.nan if v is None else float(v) for v in values]


def _chart(drill: DrillResult, path: Path) -> None:
    # A bare Figure draws with Agg and touches no pyplot global state or display.
    fig = Figure(figsize=(10, 9), dpi=100)
    calls, errors, latency, replicas = fig.subplots(4, 1, sharex=True)
    tl = drill.timeline
    t = [p.t_s for p in tl]
    calls.plot(t, [p.calls for p in tl], label="calls/s")
    calls.set_ylabel("calls/s")
    errors.plot(t, [p.public_errors for p in tl], color="tab:red", label="public errors")
    errors.plot(t, [p.sensitive_errors for p in tl], color="tab:purple", label="sensitive errors")
    errors.plot(t, [p.degraded for p in tl], "--", color="tab:orange", label="degraded answers")
    errors.set_ylabel("per second")
    latency.plot(t, _series(p.p99_ms for p in tl), label="p99 ms")
    latency.set_ylabel("p99 ms")
    replicas.step(t, _series(p.replicas for p in tl), where="post", color="tab:green")
    replicas.set_ylabel("replicas")
    replicas.set_xlabel("seconds since the drill started")
    replicas.yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (calls, errors, latency, replicas):
        ax.set_ylim(bottom=0)  # a level line at 50 calls/s should not look like a swing
        _mark_faults(ax, drill)
    calls.legend(loc="upper left", fontsize="small")
    errors.legend(loc="upper left", fontsize="small")
    _number_events(calls, drill)
    fig.suptitle(f"{drill.drill}: {drill.verdict.value}")
    fig.tight_layout()
    fig.savefig(path)


def _mark_faults(ax: Axes, drill: DrillResult) -> None:
    for i, (start, end) in enumerate(drill.fault_windows):
        label = "fault" if i == 0 else None  # one legend entry however many faults
        ax.axvspan(start, end, color="tab:red", alpha=0.15, linewidth=0, label=label)
    for event in drill.events:
        ax.axvline(event.t_s, color="0.35", linewidth=0.8, linestyle=":")


def _number_events(ax: Axes, drill: DrillResult) -> None:
    # The numbers match the events table in the Markdown, which has the words.
    for i, event in enumerate(drill.events, start=1):
        ax.annotate(
            str(i),
            xy=(event.t_s, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize="x-small",
        )
