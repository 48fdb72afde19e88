"""The drills' Kubernetes target (chaos/kubernetes) through the real `kubernetes` client,
against a FAKE API server (tests/support/fake_kube_api.py: the real API's paths and object
shapes, one simulated controller that replaces deleted pods) -- no Kubernetes API server can
run on this machine. Also the Kubernetes form of public-nodes-30, run by Chaos Toolkit's own
`run_experiment` against that fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos.kubernetes import actions, probes
from chaos.kubernetes.cluster import selector
from tests.support.fake_kube_api import FakeKubeApi

pytestmark = pytest.mark.integration
NS = "isthmus-public-a"
WORKER = {"app.kubernetes.io/instance": "isthmus", "app.kubernetes.io/component": "ray-worker"}
FORMS = Path(__file__).resolve().parents[2] / "chaos" / "drills" / "kubernetes"
DRILL = FORMS / "public-nodes-30.yaml"
PRIVATE = "isthmus-private"
GATEWAY = {"app.kubernetes.io/instance": "isthmus", "app.kubernetes.io/component": "gateway"}


@pytest.fixture
def api() -> Iterator[FakeKubeApi]:
    with FakeKubeApi(respawn_s=1.0) as fake:
        fake.add_pods(NS, WORKER, count=4, prefix="isthmus-ads-worker")
        fake.add_pods(NS, {"app.kubernetes.io/component": "ray-head"}, count=1, prefix="head")
        fake.add_custom(
            "ray.io/v1",
            "rayservices",
            NS,
            {
                "apiVersion": "ray.io/v1",
                "kind": "RayService",
                "metadata": {"name": "isthmus-ads", "namespace": NS},
                "status": {"serviceStatus": "Running", "numServeEndpoints": 4},
            },
        )
        fake.add_deployment(NS, "events-a", replicas=2)
        yield fake


def test_victims_round_up_and_never_exceed_the_pods() -> None:
    names = [f"p{i}" for i in range(10)]
    assert len(actions.victims(names[:3], 30, seed=1)) == 1
    assert len(actions.victims(names[:4], 30, seed=1)) == 2
    assert len(actions.victims(names, 100, seed=1)) == 10
    assert actions.victims(names, 30, seed=7) == actions.victims(names, 30, seed=7)
    with pytest.raises(ValueError, match="percent"):
        actions.victims(names, 0)


def test_kill_worker_pods_deletes_only_the_release_workers_and_they_come_back(
    api: FakeKubeApi,
) -> None:
    assert probes.ray_worker_pods_ready(NS, "isthmus", api_url=api.url) == 4
    killed = actions.kill_ray_worker_pods(30, NS, "isthmus", seed=3, api_url=api.url)
    assert len(killed) == 2  # 30% of 4, rounded up
    assert all(name.startswith("isthmus-ads-worker") for name in killed)
    assert api.deleted == killed
    assert probes.ray_worker_pods_ready(NS, "isthmus", api_url=api.url) == 2
    assert probes.ready_pods("app.kubernetes.io/component=ray-head", NS, api_url=api.url) == 1
    took = actions.wait_for_ready_pods(
        selector("isthmus", "ray-worker"), 4, NS, timeout_s=20, api_url=api.url
    )
    assert took < 20
    assert probes.ray_worker_pods_ready(NS, "isthmus", api_url=api.url) == 4


def test_no_matching_pod_is_an_error_not_a_silent_pass(api: FakeKubeApi) -> None:
    with pytest.raises(RuntimeError, match="no running pod"):
        actions.kill_ray_worker_pods(30, NS, "another-release", api_url=api.url)


def test_rayservice_scale_and_chaos_objects(api: FakeKubeApi) -> None:
    assert probes.rayservice_healthy("isthmus-ads", NS, api_url=api.url)
    assert probes.serve_endpoints("isthmus-ads", NS, api_url=api.url) == 4
    assert probes.deployment_available("events-a", NS, api_url=api.url)
    assert actions.scale_deployment("events-a", 0, NS, api_url=api.url) == 2
    assert not probes.deployment_available("events-a", NS, api_url=api.url)
    assert actions.scale_deployment("events-a", 2, NS, api_url=api.url) == 0
    spec = {"action": "pod-kill", "mode": "fixed-percent", "value": "30",
            "selector": {"namespaces": [NS], "labelSelectors": WORKER}}  # fmt: skip
    assert actions.create_chaos("PodChaos", "public-nodes", spec, NS, api_url=api.url)
    stored = api.custom[("chaos-mesh.org/v1alpha1", "podchaos", NS, "public-nodes")]
    assert stored["spec"] == spec
    assert stored["metadata"]["labels"] == {"isthmus.io/drill": "public-nodes"}
    assert actions.delete_chaos("PodChaos", "public-nodes", NS, api_url=api.url)
    assert not actions.delete_chaos("PodChaos", "public-nodes", NS, api_url=api.url)
    with pytest.raises(ValueError, match="unknown Chaos Mesh kind"):
        actions.create_chaos("PodKiller", "x", {}, NS, api_url=api.url)


def test_the_kubernetes_experiment_runs_under_chaos_toolkit(
    api: FakeKubeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaoslib.experiment import ensure_experiment_is_valid, run_experiment
    from chaoslib.loader import load_experiment

    monkeypatch.setenv("ISTHMUS_KUBE_API_URL", api.url)
    monkeypatch.setenv("ISTHMUS_MIN_WORKERS", "4")
    experiment = load_experiment(str(DRILL))
    ensure_experiment_is_valid(experiment)
    journal = run_experiment(experiment, settings={})
    assert journal["status"] == "completed", journal
    assert journal["deviated"] is False
    killed = journal["run"][0]["output"]
    assert len(killed) == 2
    assert api.deleted == killed
    assert journal["steady_states"]["after"]["steady_state_met"] is True


@pytest.mark.parametrize("path", sorted(FORMS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_kubernetes_form_is_valid_and_names_real_functions(path: Path) -> None:
    import importlib
    import inspect

    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    experiment = load_experiment(str(path))
    ensure_experiment_is_valid(experiment)
    activities = (
        experiment["steady-state-hypothesis"]["probes"]
        + experiment["method"]
        + experiment.get("rollbacks", [])
    )
    for activity in activities:
        provider = activity["provider"]
        assert provider["module"].startswith("chaos.kubernetes."), provider["module"]
        func = getattr(importlib.import_module(provider["module"]), provider["func"])
        inspect.signature(func).bind(**provider.get("arguments", {}))
    faults = {"partition_private_services", "degrade_public_link", "cut_public_zone",
              "cut_database", "cut_landing"}  # fmt: skip
    created = [a for a in experiment["method"] if "chaos" in a["provider"]["func"] or
               a["provider"]["func"] in faults]  # fmt: skip
    if created:  # a fault that lasts is lifted by a rollback too, whatever happens
        assert any(r["provider"]["func"] == "delete_chaos" for r in experiment["rollbacks"])
        assert experiment["runtime"]["rollbacks"]["strategy"] == "always"


@pytest.fixture
def private_api() -> Iterator[FakeKubeApi]:
    with FakeKubeApi(respawn_s=1.0) as fake:
        fake.add_pods(PRIVATE, GATEWAY, count=3, prefix="isthmus-gateway")  # the HPA's count
        fake.add_deployment(PRIVATE, "isthmus-gateway", replicas=3)
        for name in ("profile", "orders"):
            fake.add_deployment(PRIVATE, name, replicas=2)
        yield fake


def run_form(name: str, api: FakeKubeApi, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from chaoslib.experiment import run_experiment
    from chaoslib.loader import load_experiment

    monkeypatch.setenv("ISTHMUS_KUBE_API_URL", api.url)
    monkeypatch.setenv("ISTHMUS_HOLD_S", "0")
    journal: dict[str, Any] = run_experiment(load_experiment(str(FORMS / f"{name}.yaml")), {})
    return journal


def test_gateway_instance_killed_deletes_one_gateway_pod_and_waits_for_it(
    private_api: FakeKubeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = run_form("gateway-instance-killed", private_api, monkeypatch)
    assert journal["status"] == "completed", journal
    assert journal["deviated"] is False
    (kill,) = journal["run"]
    assert kill["status"] == "succeeded", kill
    assert len(kill["output"]["deleted"]) == 1
    assert private_api.deleted == kill["output"]["deleted"]
    # the fake replaces a deleted pod after 1 s: the wait saw three Ready, none deleted
    assert kill["output"]["recovered_s"] >= 0.9


def test_the_last_gateway_pod_is_never_deleted(private_api: FakeKubeApi) -> None:
    with pytest.raises(RuntimeError, match="close the door"):
        actions.kill_gateway_pods(3, PRIVATE, "isthmus", api_url=private_api.url)
    assert private_api.deleted == []


@pytest.mark.parametrize(
    ("name", "env", "kind"),
    [
        ("private-partition", {}, "partition"),
        ("latency-loss", {"ISTHMUS_PUBLIC_HOSTS": "ads.public-a.example, ads.b.example"}, "netem"),
        ("zone-out", {"ISTHMUS_ZONE_HOSTS": "ads.public-a.example"}, "partition"),
        ("db-down", {"ISTHMUS_DATABASE_HOSTS": "pg.private.example"}, "partition"),
    ],
)
def test_a_network_fault_is_created_from_the_shared_spec_and_lifted(
    name: str,
    env: dict[str, str],
    kind: str,
    private_api: FakeKubeApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    created: list[dict[str, Any]] = []
    original = actions.create_chaos

    def spy(*args: Any, **kwargs: Any) -> str:
        created.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(actions, "create_chaos", spy)
    journal = run_form(name, private_api, monkeypatch)
    assert journal["status"] == "completed", journal
    assert [a["status"] for a in journal["run"]] == ["succeeded"] * 3, journal["run"]
    assert journal["run"][2]["output"] is True  # the method lifted a fault that existed
    (spec,) = created
    assert spec["action"] == kind
    if name == "db-down":  # the services' traffic to their database, not the gateway's
        (expression,) = spec["selector"]["expressionSelectors"]
        assert expression["key"] == "isthmus.io/sensitivity"
        assert expression["values"] == ["SENSITIVE"]
        assert "labelSelectors" not in spec["selector"]
    else:
        assert spec["selector"]["labelSelectors"] == GATEWAY
    if "externalTargets" in spec:
        assert spec["externalTargets"] == [h.strip() for h in next(iter(env.values())).split(",")]
    assert not private_api.custom  # lifted by the method, and the rollback found nothing left


def test_a_network_fault_without_its_hosts_is_refused_before_anything_is_created(
    private_api: FakeKubeApi,
) -> None:
    with pytest.raises(ValueError, match="hosts"):
        actions.degrade_public_link("", namespace=PRIVATE, api_url=private_api.url)
    with pytest.raises(ValueError, match="hosts"):
        actions.cut_database(" , ", namespace=PRIVATE, api_url=private_api.url)
    assert not private_api.custom


SYNC = {"app.kubernetes.io/instance": "isthmus", "app.kubernetes.io/component": "sync"}
SYNC_ARGS = ["sync", "events", "--topology", "/etc/isthmus/data/topology.yaml",
             "--private-config", "/etc/isthmus/data/private.yaml"]  # fmt: skip


@pytest.fixture
def sync_api() -> Iterator[FakeKubeApi]:
    with FakeKubeApi(job_run_s=3.0) as fake:
        fake.add_cronjob(PRIVATE, "isthmus-sync", SYNC_ARGS, SYNC)
        yield fake


def is_audit(job: dict[str, Any]) -> bool:
    return bool(job["spec"]["template"]["spec"]["containers"][0]["args"][1] == "audit")


def test_a_job_from_the_cronjob_is_what_kubectl_create_job_from_makes() -> None:
    from chaos.kubernetes import jobs

    cronjob = {
        "metadata": {"name": "isthmus-sync", "namespace": PRIVATE, "uid": "u-1"},
        "spec": {"jobTemplate": {"metadata": {"labels": SYNC}, "spec": {
            "backoffLimit": 2, "template": {"spec": {"containers": [{"args": SYNC_ARGS}]}}}}},
    }  # fmt: skip
    job = jobs.job_from_cronjob(cronjob, "isthmus-sync-killed", extra_retries=3)
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    assert job["metadata"]["ownerReferences"][0]["name"] == "isthmus-sync"
    assert job["metadata"]["labels"] == {**SYNC, "isthmus.io/cronjob": "isthmus-sync"}
    assert job["spec"]["backoffLimit"] == 5
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == SYNC_ARGS
    assert cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 2  # not mutated
    assert jobs.audit_args(SYNC_ARGS) == ["sync", "audit", *SYNC_ARGS[2:]]
    with pytest.raises(ValueError, match="not an `isthmus sync`"):
        jobs.audit_args(["gateway", "--config", "x"])
    assert jobs.outcome({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}) == (
        "Failed"
    )
    assert jobs.outcome({"status": {}}) == ""


def test_sync_killed_deletes_the_running_pod_and_the_job_still_completes(
    sync_api: FakeKubeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISTHMUS_KILLS", "2")
    monkeypatch.setenv("ISTHMUS_RUNNING_S", "0.3")
    journal = run_form("sync-killed", sync_api, monkeypatch)
    assert journal["status"] == "completed", journal
    assert journal["deviated"] is False
    run, kill, wait = journal["run"]
    assert run["output"] == "isthmus-sync-killed"
    assert len(kill["output"]) == 2
    assert sync_api.deleted == kill["output"]
    assert wait["output"] == "Complete"
    created = [j["metadata"]["name"] for j in sync_api.jobs_created]
    assert created == ["isthmus-sync-audit", "isthmus-sync-killed", "isthmus-sync-audit"]
    drill_job = sync_api.jobs_created[1]
    assert drill_job["spec"]["backoffLimit"] == 2 + 2  # the template's own, plus the kills
    assert sync_api.job(PRIVATE, "isthmus-sync-killed")["status"]["failed"] == 2  # type: ignore[index]
    audit_job = sync_api.jobs_created[2]
    assert is_audit(audit_job)  # its pods carry the sync's labels, mounts and policies
    assert audit_job["spec"]["template"]["metadata"]["labels"] == SYNC


def test_sync_killed_deviates_when_the_audit_finds_copies(
    sync_api: FakeKubeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    audits: list[str] = []

    def result(job: dict[str, Any]) -> bool:  # the audit passes before the drill only
        if is_audit(job):
            audits.append(job["metadata"]["uid"])
            return len(set(audits)) == 1
        return True

    sync_api.job_result = result
    monkeypatch.setenv("ISTHMUS_KILLS", "1")
    monkeypatch.setenv("ISTHMUS_RUNNING_S", "0.3")
    journal = run_form("sync-killed", sync_api, monkeypatch)
    assert journal["deviated"] is True
    after = journal["steady_states"]["after"]["probes"]
    assert [p["tolerance_met"] for p in after] == [True, False]


def test_sync_killed_deviates_when_the_kills_fail_the_job(
    sync_api: FakeKubeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync that cannot resume (every try fails after a kill) fails its Job: seen."""
    sync_api.job_result = lambda job: is_audit(job)
    monkeypatch.setenv("ISTHMUS_KILLS", "1")
    monkeypatch.setenv("ISTHMUS_RUNNING_S", "0.3")
    journal = run_form("sync-killed", sync_api, monkeypatch)
    assert journal["run"][2]["output"] == "Failed"
    assert journal["deviated"] is True
    after = journal["steady_states"]["after"]["probes"]
    assert [p["tolerance_met"] for p in after] == [False]  # Chaos Toolkit stops at the first


def test_kills_past_the_end_of_the_run_are_an_error_not_a_pass(sync_api: FakeKubeApi) -> None:
    from chaos.kubernetes import jobs

    sync_api.job_run_s = 0.3
    jobs.run_sync_job("short", "isthmus-sync", PRIVATE, api_url=sync_api.url)
    with pytest.raises(RuntimeError, match="finished after 0 of 2 kills"):
        jobs.kill_job_pods("short", 2, running_s=1.0, namespace=PRIVATE, api_url=sync_api.url)


def test_sync_partition_cuts_the_sync_pods_from_the_landing_and_lifts_it(
    sync_api: FakeKubeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaos.kubernetes import faults, jobs

    created: list[dict[str, Any]] = []
    original = jobs.create_chaos

    def spy(*args: Any, **kwargs: Any) -> str:
        created.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(jobs, "create_chaos", spy)
    monkeypatch.setenv("ISTHMUS_LANDING_HOSTS", "10.50.0.8, 10.50.0.9")
    journal = run_form("sync-partition", sync_api, monkeypatch)
    assert journal["status"] == "completed", journal
    assert journal["deviated"] is False
    assert [a["status"] for a in journal["run"]] == ["succeeded"] * 5
    assert created == [faults.landing_cut(PRIVATE, "isthmus", ["10.50.0.8", "10.50.0.9"], "30m")]
    assert created[0]["selector"]["labelSelectors"] == SYNC
    assert journal["run"][3]["output"] is True  # the method lifted a cut that existed
    assert journal["run"][4]["output"] == "Complete"
    assert sync_api.jobs_created[1]["spec"]["backoffLimit"] == 2 + 6
    assert not [k for k in sync_api.custom if k[0] == "chaos-mesh.org/v1alpha1"]


def test_isthmus_chaos_run_target_kubernetes_runs_the_form_and_says_its_verdict(
    sync_api: FakeKubeApi,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from chaos.cli import main

    monkeypatch.setenv("ISTHMUS_KUBE_API_URL", sync_api.url)
    argv = ["run", "sync-killed", "--target", "kubernetes", "--report-dir", str(tmp_path)]
    assert main([*argv, "--var", "kills=1", "--var", "running_s=0.3"]) == 0
    assert "sync-killed (kubernetes): PASSED" in capsys.readouterr().out
    journal = json.loads((tmp_path / "sync-killed.kubernetes.journal.json").read_text())
    assert len(journal["run"][1]["output"]) == 1  # --var kills=1 reached the action

    sync_api.job_result = lambda job: is_audit(job)  # every sync try fails now
    assert main([*argv, "--var", "kills=1", "--var", "running_s=0.3"]) == 1
    assert "sync-killed (kubernetes): DEVIATED" in capsys.readouterr().out

    from chaos.kubernetes.run import verdict

    completed = {"status": "completed", "deviated": False}
    assert verdict({**completed, "run": [{"status": "succeeded"}]}) == "passed"
    assert verdict({**completed, "run": [{"status": "failed"}]}) == "failed"  # no fault made
    assert verdict({**completed, "deviated": True}) == "deviated"
    assert verdict({"status": "failed", "deviated": False}) == "failed"

    for bad, message in [
        (["run", "no-such-drill", "--target", "kubernetes"], "no Kubernetes form"),
        ([*argv, "--var", "nope=1"], "has no variable"),
        ([*argv, "--without", "retries"], "local target's"),
    ]:
        with pytest.raises(SystemExit):
            main(bad)
        assert message in capsys.readouterr().err
