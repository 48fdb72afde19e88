"""Drill files and the runner's pure decisions: every experiment validates with Chaos
Toolkit and our extension schema and names functions that exist with arguments they take;
the topology's allowance refuses what it does not name; switching a protection off only
prepends an action; fault arithmetic and the load's windows."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chaos.cli import parse_variables
from chaos.edits import PROTECTIONS, with_variables, without
from chaos.load import Call, SteadyLoad
from chaos.local import probes
from chaos.local.actions import protection_off
from chaos.local.platform import Platform, count_for
from chaos.runner import DRILLS, Inventory, load_drill, refusal
from services.gateway.config import GatewayConfig, from_topology
from services.local.netns import plan as net_plan
from services.local.supervisor import RunState
from services.topology import load_topology

pytestmark = pytest.mark.unit
DRILL_FILES = sorted(DRILLS.glob("*.yaml"))


def test_there_are_drills() -> None:
    assert {p.stem for p in DRILL_FILES} >= {
        "public-nodes-30",
        "replicas-30",
        "zone-out",
        "private-partition",
        "gateway-instance-killed",
        "db-down",
        "sync-killed",
        "sync-partition",
        "latency-loss",
    }


@pytest.mark.parametrize("path", DRILL_FILES, ids=lambda p: p.stem)
def test_drill_file_is_valid_and_names_real_functions(path: Path) -> None:
    experiment, spec = load_drill(path)
    assert spec.drill == path.stem
    activities = (
        experiment["steady-state-hypothesis"]["probes"]
        + experiment["method"]
        + experiment.get("rollbacks", [])
    )
    assert experiment.get("rollbacks"), "a drill without a rollback cannot restore anything"
    for activity in activities:
        provider = activity["provider"]
        assert provider["module"].startswith("chaos.local."), provider["module"]
        func = getattr(importlib.import_module(provider["module"]), provider["func"])
        inspect.signature(func).bind(**provider.get("arguments", {}))
    for probe in experiment["steady-state-hypothesis"]["probes"]:
        assert "tolerance" in probe, probe["name"]
    for fault in spec.fault_probes:
        inspect.signature(getattr(probes, fault.func)).bind(**fault.arguments)
    hypothesis = {p["name"] for p in experiment["steady-state-hypothesis"]["probes"]}
    assert set(spec.not_during) <= hypothesis


def platform(chaos: dict[str, Any] | None, isolated: bool = True) -> Platform:
    topology = load_topology()
    topology = topology.model_copy(
        update={"chaos": None if chaos is None else topology.chaos.model_copy(update=chaos)}
    )
    net = net_plan([z.name for z in topology.zones]) if isolated else None
    state = RunState("r", "/run", "10.77.0.2:50051", [], [], isolated)
    return Platform(Path("/run"), state, topology, net)


def spec_of(name: str) -> Any:
    return load_drill(DRILLS / f"{name}.yaml")[1]


def test_a_topology_without_a_chaos_section_refuses_every_drill() -> None:
    assert "no `chaos:` section" in refusal(spec_of("replicas-30"), platform(None))


def test_a_drill_touching_a_target_not_allowed_is_refused() -> None:
    allowed = platform({"targets": ["replicas"]})
    assert refusal(spec_of("replicas-30"), allowed) == ""
    assert "public-nodes" in refusal(spec_of("public-nodes-30"), allowed)


def test_a_drill_touching_a_zone_not_allowed_is_refused() -> None:
    only_b = platform({"zones": ["public-b"]})
    assert "public-a" in refusal(spec_of("replicas-30"), only_b)


def test_a_link_drill_needs_namespaces() -> None:
    assert "namespaces" in refusal(spec_of("private-partition"), platform({}, isolated=False))
    assert refusal(spec_of("private-partition"), platform({})) == ""


def test_switching_a_protection_off_prepends_one_action_and_keeps_the_original() -> None:
    experiment, _ = load_drill(DRILLS / "replicas-30.yaml")
    edited = without(experiment, ["retries"])
    assert edited["method"][1:] == experiment["method"]
    first = edited["method"][0]["provider"]
    assert (first["func"], first["arguments"]["protection"]) == ("switch_off_protection", "retries")
    assert len(experiment["method"]) == len(edited["method"]) - 1


@pytest.mark.parametrize("protection", sorted(PROTECTIONS))
def test_every_protection_switch_names_a_real_action_with_arguments_it_takes(
    protection: str,
) -> None:
    experiment, _ = load_drill(DRILLS / "sync-killed.yaml")
    added = without(experiment, [protection])["method"][: -len(experiment["method"])]
    if PROTECTIONS[protection].action is None:  # the callers' own: nothing to run on the platform
        assert added == []
        return
    (action,) = added
    provider = action["provider"]
    func = getattr(importlib.import_module(provider["module"]), provider["func"])
    inspect.signature(func).bind(**provider["arguments"])  # raises on an argument it lacks
    if provider["func"] == "switch_off_protection":  # a valid gateway config, changed
        assert provider["arguments"]["protection"] == protection
        shipped = from_topology(load_topology()).model_dump(mode="json")
        changed = {**shipped, **protection_off(protection, platform({}))}
        assert GatewayConfig.model_validate(changed) != GatewayConfig.model_validate(shipped)


def test_a_protection_that_needs_time_under_load_pauses_after_its_switch() -> None:
    experiment, _ = load_drill(DRILLS / "db-down.yaml")
    switch = without(experiment, ["durable-commits"])["method"][0]
    assert switch["provider"]["func"] == "switch_off_durable_commits"
    assert switch["pauses"]["after"] == PROTECTIONS["durable-commits"].settle_s > 0
    assert "pauses" not in without(experiment, ["retries"])["method"][0]


def test_a_variable_replaces_the_declared_value_and_reaches_the_action_typed() -> None:
    from chaoslib import substitute

    experiment, _ = load_drill(DRILLS / "sync-killed.yaml")
    edited = with_variables(experiment, {"kills": 1})
    assert experiment["configuration"]["kills"] == 3  # the original is left alone
    (kill,) = [a for a in edited["method"] if a["provider"]["func"] == "kill_sync_mid_batch"]
    arguments = substitute(kill["provider"]["arguments"], edited["configuration"], {})
    assert arguments["kills"] == 1  # an int, as the action takes it


@pytest.mark.parametrize("variables", [{"cuts": 1}, {"run_dir": "/elsewhere"}])
def test_a_variable_the_drill_does_not_declare_is_refused_with_the_ones_it_does(
    variables: dict[str, Any],
) -> None:
    experiment, _ = load_drill(DRILLS / "sync-killed.yaml")
    with pytest.raises(ValueError, match="it has: kills"):
        with_variables(experiment, variables)


def test_variables_from_the_command_line_are_yaml_scalars() -> None:
    assert parse_variables(["kills=2", "name=a=b", "on=true", "rate=0.5"]) == {
        "kills": 2,
        "name": "a=b",
        "on": True,
        "rate": 0.5,
    }
    for bad in ["kills", "=3", "kills=[1, 2]"]:
        with pytest.raises(ValueError, match="--var"):
            parse_variables([bad])


def test_an_unknown_protection_is_refused_with_the_known_ones() -> None:
    experiment, _ = load_drill(DRILLS / "replicas-30.yaml")
    with pytest.raises(ValueError, match="known: retries"):
        without(experiment, ["hope"])


@pytest.mark.parametrize(
    ("percent", "total", "expected"),
    [(30, 3, 1), (30, 4, 2), (30, 10, 3), (30, 11, 4), (100, 3, 3), (30, 0, 0), (1, 5, 1)],
)
def test_a_percentage_fault_rounds_up(percent: float, total: int, expected: int) -> None:
    assert count_for(percent, total) == expected


def test_inventory_differences_name_processes_and_links() -> None:
    before = Inventory({"gateway-1": "running", "ads-a": "running"}, {"zone2": True})
    assert before.differences(replace(before)) == []
    after = Inventory({"gateway-1": "backoff", "ads-a": "running"}, {"zone2": False})
    found = before.differences(after)
    assert any("gateway-1" in d for d in found)
    assert any("zone2" in d for d in found)


def test_load_windows_split_by_class_and_method() -> None:
    load = SteadyLoad("127.0.0.1:1", {})
    load.calls = [
        Call(1.0, "AdService/Rank", True, "OK", 0.01),
        Call(1.5, "AdService/Rank", True, "OK", 0.02, degraded=True, compliant=False),
        Call(2.0, "EventService/Track", True, "UNAVAILABLE", 0.5),
        Call(2.5, "OrderService/PlaceOrder", False, "OK", 0.03),
        Call(9.0, "AdService/Rank", True, "OK", 0.01),
    ]
    public = load.window(0, 5, public=True)
    assert (public.total, public.ok, public.degraded, public.noncompliant) == (3, 2, 1, 1)
    assert public.codes == {"OK": 2, "UNAVAILABLE": 1}
    assert load.window(0, 5, method="AdService/Rank").success_ratio == 1.0
    assert load.window(0, 5, public=False).total == 1
    assert load.window(3, 5).success_ratio is None  # nothing measured is not a pass


def test_undo_now_runs_each_registered_undo_once() -> None:
    from chaos.context import Drill

    drill = Drill("d", platform(None), SteadyLoad.__new__(SteadyLoad))
    ran: list[str] = []
    drill.undo["link:a"] = lambda: ran.append("link")
    drill.undo["nft:a"] = lambda: ran.append("nft")
    drill.undo_now("link:a", "frozen:a")  # one registered, one never was
    drill.undo_now("link:a")  # already undone: the rollback must not run it again
    assert ran == ["link"]
    assert list(drill.undo) == ["nft:a"]


@pytest.mark.parametrize(("shipped", "expected"), [(True, 0.3), (False, 5.0)])
def test_the_load_gives_a_call_the_shipped_timeout_only_when_the_drill_asks(
    shipped: bool, expected: float
) -> None:
    import asyncio

    from chaos.load import SteadyLoad

    load = SteadyLoad("127.0.0.1:1", {"ad-server": "t"}, shipped_timeouts=shipped)
    load.timeouts = {"AdService/Rank": 0.3}  # as _main reads them from the shipped config
    given: list[float] = []

    async def stub(request: object, **kwargs: float) -> object:
        given.append(kwargs["timeout"])
        return object()

    asyncio.run(load._call("ad-server", "AdService/Rank", True, stub, object()))
    assert given == [expected]
    assert [c.code for c in load.calls] == ["OK"]


def test_the_slowness_drill_runs_with_the_callers_shipped_timeouts() -> None:
    _, spec = load_drill(DRILLS / "latency-loss.yaml")
    assert spec.shipped_timeouts


@pytest.mark.parametrize(
    ("waited_s", "expected"), [(0.0, 20.0), (19.9, 20.0), (20.0, 30.0), (40.0, 45.0), (1e6, 80.0)]
)
def test_the_load_ramp_multiplies_each_step_up_to_its_cap(waited_s: float, expected: float) -> None:
    from chaos.load import ramped_rate

    assert ramped_rate(20.0, waited_s, 20.0, 1.5, 4.0) == expected


def test_a_ramp_that_would_lower_the_load_is_refused() -> None:
    from chaos.load import ramped_rate

    with pytest.raises(ValueError, match="factor >= 1"):
        ramped_rate(20.0, 30.0, 20.0, 0.5, 4.0)


def test_waiting_for_replicas_raises_the_load_until_serve_scales(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fast machine ranks in less time than the drill's rate needs to look busy: the wait
    # must raise the load rather than time out and leave the drill with one replica.
    from chaos import context
    from chaos.local import actions

    load = SteadyLoad("127.0.0.1:1", {"ad-server": "t"}, rps=20.0)
    drill = context.Drill("replicas-30", platform(None), load)
    monkeypatch.setattr(actions, "running_replicas", lambda *_: 2 if load.rps >= 40 else 1)
    monkeypatch.setattr(actions, "replicas_settled", lambda *_: True)
    context.install(drill)
    try:
        got = actions.wait_for_replicas("public-a", 2, timeout_s=20, ramp_every_s=0.2)
    finally:
        context.install(None)
    assert got == 2
    assert load.rps >= 40  # and it stays raised for the fault
    events = [what for _, what in drill.events]
    assert any("load raised to" in what for what in events)
    assert events[-1].startswith("public-a at 2 replicas under")


def test_waiting_for_replicas_fails_naming_the_load_it_reached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chaos import context
    from chaos.local import actions

    load = SteadyLoad("127.0.0.1:1", {"ad-server": "t"}, rps=20.0)
    monkeypatch.setattr(actions, "running_replicas", lambda *_: 1)
    monkeypatch.setattr(actions, "replicas_settled", lambda *_: True)
    context.install(context.Drill("replicas-30", platform(None), load))
    try:
        with pytest.raises(RuntimeError, match=r"within 1s \(load up to 80 rounds/s\)"):
            actions.wait_for_replicas("public-a", 2, timeout_s=1, ramp_every_s=0.1)
    finally:
        context.install(None)
