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
