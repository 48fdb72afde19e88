"""Run one drill: refuse what the topology does not allow, drive steady load, run the Chaos
Toolkit experiment (rollbacks always), judge every probe before, during and after the fault,
check the platform is back as it was, and write the journal, the result and the report.

A drill file is a plain Chaos Toolkit experiment; its `extensions` entry named `isthmus`
(`DrillSpec`) says what the drill touches, the load it runs under, its abort floor and
wall-clock limit, and the probes judged over the fault windows only.
"""

from __future__ import annotations

import inspect
import json
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chaos import context, control
from chaos.edits import with_variables, without
from chaos.load import SteadyLoad
from chaos.local import probes
from chaos.local.platform import Platform, in_namespace, link_is_up
from chaos.report import write_report
from chaos.result import DrillResult
from chaos.verdict import ProbeRow, coalesce_windows, overall, percentile, probe_row

log = logging.getLogger(__name__)
DRILLS = Path(__file__).with_name("drills")
WINDOW_PROBES = {
    "success_ratio",
    "failed_calls",
    "latency_p99_ms",
    "degraded_answers",
    "degraded_share",
    "noncompliant_answers",
    "failure_codes_only",
    "slowest_failure_ms",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaultProbe(_Strict):
    """A probe judged over fault windows only (e.g. "every Rank degraded while both public
    zones are out")."""

    name: str = Field(description="Row name in the verdict table.")
    func: str = Field(description="A function of chaos.local.probes.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Its arguments.")
    tolerance: Any = Field(description="Chaos Toolkit tolerance.")
    windows: list[int] | None = Field(default=None, description="Fault windows; None = all.")


class AbortSpec(_Strict):
    sensitivity: str = Field(default="public", pattern="^(public|sensitive|any)$")
    below: float = Field(ge=0, le=1, description="Abort when the success ratio falls below.")
    window_s: float = Field(default=5.0, gt=0, description="Over the last this many seconds.")


class DrillSpec(_Strict):
    """The `isthmus` extension of a drill file."""

    name: str = Field(default="isthmus", pattern="^isthmus$")
    drill: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Drill id.")
    targets: list[str] = Field(min_length=1, description="Kinds of fault (topology chaos).")
    zones: list[str] = Field(default_factory=list, description="Zones touched.")
    load_rps: float = Field(default=15.0, gt=0, le=200, description="Load rounds per second.")
    warmup_s: float = Field(default=8.0, ge=0, description="Load before the hypothesis.")
    abort: AbortSpec | None = Field(default=None, description="Abort floor; None = none.")
    max_duration_s: float = Field(default=420.0, gt=0, description="Wall-clock limit.")
    fault_probes: list[FaultProbe] = Field(default_factory=list, description="During only.")
    needs_isolation: bool = Field(default=False, description="Needs zone namespaces.")
    shipped_timeouts: bool = Field(
        default=False,
        description="The callers give each call its shipped timeout "
        "(protos/client_service_config.json: Rank 0.3 s, Track 2 s, profile and orders 5 s) "
        "instead of 5 s for every call: for drills about slowness, where a patient caller "
        "would hide what the gateway does about it.",
    )
    not_during: list[str] = Field(
        default_factory=list,
        description="Hypothesis probes not judged over the fault windows (the fault is meant "
        "to break them, e.g. SENSITIVE calls while the private link is cut).",
    )


def drill_file(name: str) -> Path:
    path = DRILLS / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in DRILLS.glob("*.yaml")))
        raise ValueError(f"no drill {name!r}; known: {known}")
    return path


def load_drill(path: Path) -> tuple[dict[str, Any], DrillSpec]:
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    experiment: dict[str, Any] = load_experiment(str(path))
    ensure_experiment_is_valid(experiment)
    specs = [e for e in experiment.get("extensions", []) if e.get("name") == "isthmus"]
    if len(specs) != 1:
        raise ValueError(f"{path}: needs exactly one extension named isthmus")
    return experiment, DrillSpec.model_validate(specs[0])


def refusal(spec: DrillSpec, platform: Platform) -> str:
    """Why the topology does not allow this drill ("" when it does). Pure."""
    allowance = platform.topology.chaos
    if allowance is None:
        return "the topology allows no drills (no `chaos:` section)"
    missing = sorted(set(spec.targets) - set(allowance.targets))
    if missing:
        return f"the topology's chaos.targets do not allow {', '.join(missing)}"
    if allowance.zones and not set(spec.zones) <= set(allowance.zones):
        return f"zones {sorted(set(spec.zones) - set(allowance.zones))} not in chaos.zones"
    known = {z.name for z in platform.topology.zones}
    if not set(spec.zones) <= known:
        return f"zones {sorted(set(spec.zones) - known)} not in the topology"
    if spec.needs_isolation and platform.net is None:
        return "needs zones in network namespaces (`isthmus up --isolate`, as root)"
    return ""


@dataclass
class Inventory:
    """What must be as it was after a drill: supervised processes running, links up, no
    packet filters left."""

    processes: dict[str, str]
    links: dict[str, bool]
    filters: list[str] = field(default_factory=list)

    @classmethod
    def take(cls, platform: Platform) -> Inventory:
        processes = {p.name: p.status for p in platform.state.processes}
        links = {}
        filters: list[str] = []
        if platform.net is not None:
            for link in platform.net.links:
                links[link.near_if] = link_is_up(link.near_ns, link.near_if)
            filters = packet_filters(platform.net.gateway_ns)
        return cls(processes, links, filters)

    def differences(self, other: Inventory) -> list[str]:
        out = [
            f"{name}: {status} before, {other.processes.get(name)} after"
            for name, status in self.processes.items()
            if other.processes.get(name) != status
        ]
        out += [
            f"link {name}: {'up' if up else 'down'} before, not after"
            for name, up in self.links.items()
            if other.links.get(name) != up
        ]
        if other.filters != self.filters:
            out.append(f"packet filters: {self.filters} before, {other.filters} after")
        return out


def packet_filters(namespace: str) -> list[str]:
    """nftables tables in the gateway's namespace (a drill's drop rules live in one)."""
    import shutil

    if shutil.which("nft") is None:
        return []
    listed = in_namespace(namespace, "nft", "list", "tables", check=False)
    return sorted(line.strip() for line in listed.stdout.splitlines() if line.strip())


def run_drill(
    name: str,
    run_dir: Path,
    report_dir: Path,
    load_rps: float | None = None,
    protections_off: list[str] | None = None,
    variables: dict[str, Any] | None = None,
) -> DrillResult:
    """Run drill `name` against the platform in `run_dir`, optionally with some of its
    configuration values replaced (`variables`, e.g. fewer kills for a short form) and some
    of the platform's protections switched off (to show the drill can fail; the result is
    then named `<drill>-without-<protection>`)."""
    experiment, spec = load_drill(drill_file(name))
    if variables:
        experiment = with_variables(experiment, variables)
    if protections_off:
        experiment = without(experiment, protections_off)
        suffix = "-without-" + "-".join(protections_off)
        spec = spec.model_copy(update={"drill": spec.drill + suffix})
    platform = Platform.load(run_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    started_unix = time.time()
    why = refusal(spec, platform)
    if why:
        result = _result(spec, experiment, started_unix, [], None, refused=why)
        _write(result, report_dir, None)
        return result
    before = Inventory.take(platform)
    load = SteadyLoad(
        platform.state.gateway,
        _tokens(platform.run_dir),
        rps=load_rps or spec.load_rps,
        compliance=_compliance(),
        # "retries" off means nobody retries: neither the gateway nor the callers.
        client_retries=not {"retries", "client-retries"} & set(protections_off or []),
        shipped_timeouts=spec.shipped_timeouts,
    )
    load.start()
    drill = context.Drill(spec.drill, platform, load)
    context.install(drill)
    sampler = _ReplicaSampler(drill, [z.name for z in platform.topology.public_zones()])
    sampler.start()
    try:
        time.sleep(spec.warmup_s)
        # The drill's own limit, capped by what the topology allows any drill.
        allowance = platform.topology.chaos
        limit_s = allowance.max_duration_s if allowance is not None else spec.max_duration_s
        journal = _run_experiment(experiment, spec, run_dir, limit_s)
        rows = _judge(experiment, spec, journal, drill)
        time.sleep(2.0)
        drill.event(f"failed calls by method and status: {_failures(drill)}")
    finally:
        sampler.stop()
        load.stop()
        context.install(None)
    restored = _restored(before, run_dir)
    result = _result(spec, experiment, started_unix, rows, journal, drill=drill, restored=restored)
    _write(result, report_dir, journal)
    return result


def _run_experiment(
    experiment: dict[str, Any], spec: DrillSpec, run_dir: Path, limit_s: float
) -> Any:
    from chaoslib.experiment import run_experiment
    from chaoslib.settings import loaded_settings

    experiment.setdefault("configuration", {})["run_dir"] = str(run_dir)
    arguments: dict[str, Any] = {"max_duration_s": min(spec.max_duration_s, limit_s)}
    if spec.abort is not None:
        arguments.update(
            floor=spec.abort.below, sensitivity=spec.abort.sensitivity, window_s=spec.abort.window_s
        )
    experiment.setdefault("controls", []).append(
        {
            "name": "isthmus-guard",
            "provider": {"type": "python", "module": "chaos.control", "arguments": arguments},
        }
    )
    settings = {"runtime": {"rollbacks": {"strategy": "always"}}}
    loaded_settings.set(settings)
    # The guard aborts through chaoslib's SIGUSR1 (SystemExit inside the run). One that fires
    # just as the run ends would meet the default action -- end the process before the result
    # is written -- so outside chaoslib's own handlers these signals are ignored.
    for signum in (signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    return run_experiment(experiment, settings=settings)


def _judge(
    experiment: dict[str, Any], spec: DrillSpec, journal: Any, drill: context.Drill
) -> list[ProbeRow]:
    """One row per hypothesis probe (before, during, after) and per fault probe (during)."""
    states = journal.get("steady_states") or {}
    outputs = {
        phase: {
            p["activity"]["name"]: p.get("output")
            for p in (states.get(phase) or {}).get("probes", [])
        }
        for phase in ("before", "after")
    }
    windows = drill.closed_windows()
    rows = []
    for probe in experiment.get("steady-state-hypothesis", {}).get("probes", []):
        func = probe["provider"]["func"]
        values: dict[str, object] = {p: outputs[p].get(probe["name"]) for p in outputs}
        phases: tuple[str, ...] = ("before", "after")
        if func in WINDOW_PROBES and windows and probe["name"] not in spec.not_during:
            values["during"] = _during(drill, func, probe["provider"].get("arguments", {}), windows)
            phases = ("before", "during", "after")
        rows.append(probe_row(probe["name"], probe["tolerance"], values, phases))
    for fault in spec.fault_probes:
        chosen = (
            windows
            if fault.windows is None
            else [windows[i] for i in fault.windows if i < len(windows)]
        )
        value = _during(drill, fault.func, fault.arguments, chosen) if chosen else None
        rows.append(probe_row(fault.name, fault.tolerance, {"during": value}, ("during",)))
    return rows


def _during(
    drill: context.Drill, func: str, arguments: dict[str, Any], windows: list[tuple[float, float]]
) -> object:
    """The probe over each window; the worst (for ratios the lowest, counts the highest)."""
    probe = getattr(probes, func)
    arguments = dict(arguments)
    if "run_dir" in inspect.signature(probe).parameters:
        arguments.setdefault("run_dir", str(drill.platform.run_dir))  # the drill's platform
    values = []
    for window in coalesce_windows(windows):
        drill.judging = window
        try:
            values.append(probe(**arguments))
        except Exception as exc:  # a probe that cannot measure is "not measured", not a crash
            drill.event(f"probe {func} could not measure: {exc}")
            values.append(probes.NOT_MEASURED)
        finally:
            drill.judging = None
    measured = [v for v in values if v != probes.NOT_MEASURED]
    if not measured:
        return None
    if func == "success_ratio" or isinstance(measured[0], bool):
        return min(measured)
    return max(measured)


def _restored(before: Inventory, run_dir: Path, timeout_s: float = 120.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        differences = before.differences(Inventory.take(Platform.load(run_dir)))
        if not differences or time.monotonic() > deadline:
            return differences
        time.sleep(1.0)


def _failed_activity(run: dict[str, Any]) -> str:
    """A failed activity of the journal's run, named, with the last line of its error."""
    lines = [str(line).strip() for line in run.get("exception") or [] if str(line).strip()]
    return str(run["activity"]["name"]) + (f" ({lines[-1]})" if lines else "")


def _result(
    spec: DrillSpec,
    experiment: dict[str, Any],
    started_unix: float,
    rows: list[ProbeRow],
    journal: Any,
    drill: context.Drill | None = None,
    refused: str = "",
    restored: list[str] | None = None,
) -> DrillResult:
    failed = [
        _failed_activity(r)
        for r in (journal or {}).get("run", [])
        if r.get("status") not in ("succeeded", None)
    ]
    if drill is not None and drill.load.error is not None:
        failed.append(f"the steady load itself ({drill.load.error!r})")
    interrupted = (journal or {}).get("status") == "interrupted" and not control.STATE["aborted"]
    verdict = overall(
        rows,
        aborted=bool(control.STATE["aborted"]) if journal else False,
        refused=bool(refused),
        interrupted=interrupted,
        error=f"failed: {', '.join(failed)}" if failed else None,
        restored=not restored,
    )
    timeline = _timeline(drill) if drill else []
    return DrillResult.from_dict(
        {
            "drill": spec.drill,
            "title": experiment.get("title", spec.drill),
            "verdict": verdict.value,
            "started_unix_s": started_unix,
            "duration_s": round(time.time() - started_unix, 1),
            "fault_windows": [list(w) for w in drill.closed_windows()] if drill else [],
            "probes": [r.to_dict() for r in rows],
            "timeline": timeline,
            "events": [{"t_s": round(t, 2), "what": w} for t, w in (drill.events if drill else [])]
            + ([{"t_s": 0.0, "what": f"refused: {refused}"}] if refused else []),
            "recovery_s": drill.recovery_s if drill else None,
            "failures": failed,
            "rollbacks": [
                {"name": r["activity"]["name"], "status": r.get("status", "?")}
                for r in (journal or {}).get("rollbacks", [])
            ],
            "restored": {"ok": not restored and not refused, "differences": restored or []},
            "journal": "",
            "load_rps": drill.load.rps if drill else 0.0,
        }
    )


def _failures(drill: context.Drill) -> str:
    counts: dict[str, int] = {}
    for call in list(drill.load.calls):
        if call.code != "OK":
            key = f"{call.method} {call.code}"
            counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} x{n}" for k, n in sorted(counts.items())) or "none"


def _timeline(drill: context.Drill) -> list[dict[str, Any]]:
    calls = list(drill.load.calls)
    end = int(drill.now()) + 1
    buckets: list[dict[str, Any]] = []
    replicas = dict((int(t), n) for t, n in drill.replicas)
    for second in range(end):
        inside = [c for c in calls if second <= c.t_s < second + 1]
        failed = [c for c in inside if c.code != "OK"]
        latencies = [c.latency_s * 1000 for c in inside if c.code == "OK"]
        buckets.append(
            {
                "t_s": float(second),
                "calls": len(inside),
                "errors": len(failed),
                "public_errors": sum(c.public for c in failed),
                "sensitive_errors": sum(not c.public for c in failed),
                "degraded": sum(c.degraded for c in inside),
                "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
                "replicas": replicas.get(second),
            }
        )
    return buckets


def _write(result: DrillResult, report_dir: Path, journal: Any) -> None:
    payload = result.to_dict()
    if journal is not None:
        path = report_dir / f"{result.drill}.journal.json"
        path.write_text(json.dumps(journal, indent=1, default=str))
        payload["journal"] = str(path)
    (report_dir / f"{result.drill}.json").write_text(json.dumps(payload, indent=1))
    write_report(payload, report_dir)


def _tokens(run_dir: Path) -> dict[str, str]:
    from services.local.up import token_for

    return {c: token_for(run_dir, c, ttl_s=3600) for c in ("ad-server", "storefront", "checkout")}


def _compliance() -> Any:
    """Whether a degraded answer obeys the ranking service's rules file (the same file and
    the same `screen` both paths use)."""
    from services.adpolicy import SHIPPED_RULES_FILE
    from services.adpolicy.rules import load_rules, screen

    rules = load_rules(SHIPPED_RULES_FILE)

    def compliant(request: Any, answer: Any) -> bool:
        eligible, _ = screen(request.candidates, request.context, rules)
        allowed = {request.candidates[i].ad_id for i in eligible}
        return all(ad.ad_id in allowed for ad in answer.ads)

    return compliant


class _ReplicaSampler(context.EverySecond):
    """Samples the public zones' running replicas once a second for the timeline."""

    def __init__(self, drill: context.Drill, zones: list[str]) -> None:
        super().__init__()
        self.drill, self.zones = drill, zones

    def tick(self) -> None:
        run_dir = str(self.drill.platform.run_dir)
        total = 0
        for zone in self.zones:
            try:
                total += probes.running_replicas(zone, run_dir)
            except (RuntimeError, OSError, ValueError):
                continue
        self.drill.replicas.append((self.drill.now(), total))
