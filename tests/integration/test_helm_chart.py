"""The Helm chart, checked offline with real tools: Helm's own Go SDK renders and lints it
(values.schema.json included), every rendered object validates against the Kubernetes
schemas of a pinned version (strict: unknown fields refused), every Chaos Mesh and KubeRay
object against the operators' CRDs (../shared/crds), and the serveConfigV2 against Ray
Serve's own schema. Each ci/*-values.yaml overlays the values `isthmus render helm-values`
writes for its zone. The policy checks (services/deploy/checks.py) run on every rendering,
and each is shown to catch the mistake it exists for.

Not checked here (no API server on this machine): admission webhooks, CEL rules, that the
operators reconcile these objects, and `helm test` itself.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.contract.descriptors import load_descriptor_set, method_table
from services.deploy import checks
from services.deploy.helm_values import RenderError, zone_values
from services.deploy.serve_config import in_image
from services.deploy.values import values_schema
from services.public.ads.config import AdsConfig
from services.topology import load_topology
from tests.support.crds import SHARED_CRDS, crd_errors, load_crd_validators
from tests.support.helm_chart import CHART, NAMESPACES, ci_values, merged, render, zone_base

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (scripts/setup installs it)")
kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (scripts/setup)")

pytestmark = pytest.mark.integration
KUBE_VERSION = "1.31"
CI_FILES = sorted((CHART / "ci").glob("*-values.yaml"))
CUSTOM = {
    ("ray.io/v1", "RayService"),
    ("chaos-mesh.org/v1alpha1", "PodChaos"),
    ("chaos-mesh.org/v1alpha1", "NetworkChaos"),
    ("chaos-mesh.org/v1alpha1", "Schedule"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


@pytest.fixture(scope="module")
def crd_validators() -> Any:
    if not SHARED_CRDS.is_dir():
        pytest.skip(f"{SHARED_CRDS} is absent (a clone without ../shared): CRD checks skipped")
    return load_crd_validators()


def test_values_schema_is_generated_from_the_model() -> None:
    committed = json.loads((CHART / "values.schema.json").read_text())
    assert committed == values_schema(), "run `isthmus render values-schema -o ...`"


def test_values_yaml_has_a_comment_above_every_key_and_fits_the_schema() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "-")) and ":" in stripped:
            assert lines[i - 1].strip().startswith("#"), f"values.yaml:{i + 1}: {stripped}"
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(yaml.safe_load((CHART / "values.yaml").read_text()))


@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: p.stem)
def test_ci_values_render_lint_and_validate(path: Path, crd_validators: Any) -> None:
    kind, values = ci_values(path)
    namespace = NAMESPACES[kind]
    report = helm.lint(str(CHART), values, strict=True, namespace=namespace, kube_version="v1.31.0")
    assert not [m for m in report["messages"] if m["severity"] > 1], report["messages"]
    docs = render(values, namespace)
    assert docs
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        key = (doc["apiVersion"], doc["kind"])
        if key in CUSTOM:
            if key[0].startswith(("ray.io", "chaos-mesh.org")):
                assert crd_errors(crd_validators, doc) == [], name
            continue
        kv.validate(doc, KUBE_VERSION, strict=True)
    assert checks.sensitive_placement(docs, kind) == []
    assert checks.private_service_exposure(docs) == []
    assert (
        checks.drill_violations(docs, values.get("drills", {}).get("allowedNamespaces", [])) == []
    )
    assert checks.serve_config_violations(docs, in_image(AdsConfig())) == []
    assert checks.serve_port_exposure(docs) == []
    assert checks.terminator_violations(docs) == []
    if kind == "private":
        assert ("apps/v1", "Deployment") in kinds
        assert ("policy/v1", "PodDisruptionBudget") in kinds
    else:
        assert ("ray.io/v1", "RayService") in kinds
        names = {(d["kind"], d["metadata"]["name"]) for d in docs}
        assert {
            ("Deployment", "isthmus-serve-terminator"),
            ("PodDisruptionBudget", "isthmus-serve-terminator"),
            ("Service", "isthmus-ads-grpc"),
            ("Service", "isthmus-serve-grpc"),
        } <= names


def test_serve_config_passes_ray_serves_own_schema_and_matches_ads_config() -> None:
    from ray.serve.config import AutoscalingConfig
    from ray.serve.schema import ServeDeploySchema

    docs = render(zone_base("public"), NAMESPACES["public"])
    service = next(d for d in docs if d["kind"] == "RayService")
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(config)
    # Where Serve binds inside the pod is the chart's podListenHost value, and only that.
    assert config["http_options"]["host"] == "0.0.0.0"  # values.yaml's default
    chosen = render({**zone_base("public"), "podListenHost": "::"}, NAMESPACES["public"])
    ray_service = next(d for d in chosen if d["kind"] == "RayService")
    assert yaml.safe_load(ray_service["spec"]["serveConfigV2"])["http_options"]["host"] == "::"
    for app in config["applications"]:
        for deployment in app["deployments"]:
            scaling = deployment["autoscaling_config"]
            assert set(scaling) <= set(AutoscalingConfig.model_fields)
            AutoscalingConfig.model_validate(scaling)
    # The check fails when the rendered autoscaling drifts from AdsConfig.
    drifted = copy.deepcopy(zone_base("public"))
    deployments = drifted["public"]["serveConfig"]["applications"][0]["deployments"]
    deployments[0]["autoscaling_config"]["downscale_delay_s"] = 7.5
    bad = render(drifted, NAMESPACES["public"])
    problems = checks.serve_config_violations(bad, in_image(AdsConfig()))
    assert problems == [
        "RayService/isthmus-ads: AdRanker.autoscaling_config.downscale_delay_s: 7.5 rendered, "
        f"{AdsConfig().autoscaling.downscale_delay_s} in AdsConfig"
    ]


def test_a_sensitive_service_is_never_rendered_into_a_public_release() -> None:
    # The topology model refuses such a zone outright (placement); a topology built past
    # it (model_copy skips validation) is refused by the renderer, naming the service.
    topology = load_topology()
    table = method_table(load_descriptor_set())
    zone = topology.zone("public-a")
    bad_zone = zone.model_copy(
        update={"services": [*zone.services, topology.zone("private").services[0]]}
    )
    bad = topology.model_copy(
        update={"zones": [topology.zone("private"), bad_zone, topology.zone("public-b")]}
    )
    with pytest.raises(RenderError, match="profile serve SENSITIVE RPCs"):
        zone_values(bad, "public-a", table)
    # Values written by hand: the chart refuses them at render, naming the service.
    values = merged(zone_base("public"), {})
    values["services"].append(
        {"name": "profile", "kind": "profile", "sensitivity": "SENSITIVE", "port": 50061}
    )
    with pytest.raises(Exception, match="profile is SENSITIVE and cannot run in public zone"):
        render(values, NAMESPACES["public"])
    # And if a template ever rendered one anyway, the policy check names it.
    private_docs = render(zone_base("private"), NAMESPACES["private"])
    leaked = [
        d for d in private_docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "profile"
    ]
    assert checks.sensitive_placement(leaked, "public") == [
        "Deployment/profile: SENSITIVE in a public zone"
    ]


def test_a_policy_that_lets_another_namespace_reach_a_private_service_is_caught() -> None:
    docs = render(zone_base("private"), NAMESPACES["private"])
    assert checks.private_service_exposure(docs) == []
    opened = copy.deepcopy(docs)
    policy = next(d for d in opened if d["metadata"]["name"] == "orders-from-gateway")
    policy["spec"]["ingress"][0]["from"].append(
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "isthmus-public-a"}}}
    )
    problems = checks.private_service_exposure(opened)
    assert len(problems) == 1
    assert "orders reachable from another namespace" in problems[0]
    no_deny = [d for d in docs if d["metadata"]["name"] != "isthmus-default-deny"]
    assert "no default-deny" in checks.private_service_exposure(no_deny)[0]


def test_drills_outside_the_allowlist_or_with_an_invalid_mode_are_refused(
    crd_validators: Any,
) -> None:
    kind, values = ci_values(CHART / "ci" / "public-drills-values.yaml")
    with pytest.raises(Exception, match=r"not in drills\.allowedNamespaces"):
        render(values, "default")
    docs = render(values, NAMESPACES[kind])
    chaos = next(d for d in docs if d["kind"] == "PodChaos")
    assert chaos["spec"]["mode"] == "fixed-percent"
    assert chaos["spec"]["value"] == "30"
    assert checks.drill_violations(docs, ["isthmus-public-a"]) == []
    assert checks.drill_violations(docs, ["elsewhere"]) == [
        f"PodChaos/{chaos['metadata']['name']}: namespace isthmus-public-a is not allowlisted "
        "for drills"
    ]
    broken = copy.deepcopy(chaos)
    broken["spec"]["mode"] = "thirty-percent"
    assert crd_errors(crd_validators, broken), "the CRD schema must refuse an unknown mode"
    assert "mode 'thirty-percent'" in checks.drill_violations([broken], ["isthmus-public-a"])[0]
    values["drills"]["podChaos"]["percent"] = 0
    with pytest.raises(Exception, match="minimum"):
        render(values, NAMESPACES[kind])


def test_drills_are_off_by_default() -> None:
    for kind in ("private", "public"):
        docs = render(zone_base(kind), NAMESPACES[kind])
        assert not [d for d in docs if d["apiVersion"].startswith("chaos-mesh.org/")]


def test_the_rendered_configs_are_what_the_services_accept() -> None:
    """The gateway's topology and overrides, the private services' and events' settings, as
    the processes will parse them: public zones dialled with mTLS, private ones plaintext."""
    from services.gateway.config import from_topology
    from services.private.config import PrivateZoneConfig
    from services.public.events.config import EventsConfig
    from services.topology import parse_topology

    _, values = ci_values(CHART / "ci" / "private-observability-values.yaml")
    docs = render(values, NAMESPACES["private"])
    maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    topology = parse_topology(maps["isthmus-gateway"]["topology.yaml"], "<chart>")
    overrides = yaml.safe_load(maps["isthmus-gateway"]["gateway.yaml"])
    config = from_topology(topology, **overrides)
    dial = {c.name: c.dial_tls(config.upstream_tls).enabled for c in config.clusters}
    assert dial == {
        "profile": False,
        "orders": False,
        "ads-a": True,
        "events-a": True,
        "ads-b": True,
        "events-b": True,
    }
    assert config.server.health_listen is not None
    assert config.server.listen.port == values["gateway"]["port"]
    assert config.server.tls.require_client_cert
    assert [c.name for c in config.auth.callers] == ["storefront", "checkout"]
    private = PrivateZoneConfig.model_validate(
        yaml.safe_load(maps["isthmus-services"]["private.yaml"])
    )
    assert private.database_url_file == Path("/etc/isthmus/database/database-url")
    _, public = ci_values(CHART / "ci" / "public-values.yaml")
    public_maps = {
        d["metadata"]["name"]: d["data"]
        for d in render(public, NAMESPACES["public"])
        if d["kind"] == "ConfigMap"
    }
    events = EventsConfig.model_validate(
        yaml.safe_load(public_maps["isthmus-services"]["events.yaml"])
    )
    assert events.server.tls.require_client_cert
    assert events.landing_dir == Path("/var/lib/isthmus/landing")  # the landing volume


def test_the_chart_renders_the_same_faults_as_the_drills_kubernetes_forms() -> None:
    """One source of truth: the chart's scheduled NetworkChaos specs are the ones the
    Kubernetes experiments create (chaos/kubernetes/faults.py)."""
    from chaos.kubernetes import faults

    _, values = ci_values(CHART / "ci" / "private-drills-values.yaml")
    namespace = NAMESPACES["private"]
    rendered = {
        d["metadata"]["labels"]["isthmus.io/drill"]: d["spec"].get("networkChaos", d["spec"])
        for d in render(values, namespace)
        if d["kind"] in {"Schedule", "NetworkChaos"}
    }
    drills = values["drills"]
    hosts = [c["ads"]["host"] for c in values["gateway"]["publicClusters"]]
    assert rendered["private-partition"] == faults.private_partition(
        namespace, "isthmus", drills["duration"]
    )
    link = drills["publicLink"]
    assert rendered["latency-loss"] == faults.public_link(
        namespace, "isthmus", hosts, link["latencyMs"], link["lossPercent"], drills["duration"]
    )
    assert rendered["db-down"] == faults.database_cut(
        namespace, drills["databaseCut"]["hosts"], drills["duration"]
    )
    assert set(rendered) == {"private-partition", "latency-loss", "db-down"}


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_serve_is_reached_only_through_a_terminator_that_requires_client_certificates() -> None:
    """Serve's gRPC proxy has no TLS: the public release's ads load balancer selects the nginx
    terminators (never Ray pods), on the port the private release's gateway dials; nginx
    requires a client certificate there; in the namespace only the terminators (and Ray's own
    pods) reach Serve's port. Each check catches the mistake it exists for."""
    docs = render(zone_base("public"), NAMESPACES["public"])
    dialled = {c["ads"]["port"] for c in zone_base("private")["gateway"]["publicClusters"]}
    balancer = one(docs, "Service", "isthmus-ads-grpc")
    assert [p["port"] for p in balancer["spec"]["ports"]] == sorted(dialled) == [9000]
    assert balancer["spec"]["selector"]["app.kubernetes.io/component"] == "serve-terminator"
    assert checks.serve_port_exposure(docs) == []
    assert checks.terminator_violations(docs) == []

    # The load balancer as it was before the terminator: Serve's port on the Ray workers.
    exposed = copy.deepcopy(docs)
    spec = one(exposed, "Service", "isthmus-ads-grpc")["spec"]
    spec["selector"] = {"ray.io/node-type": "worker", "app.kubernetes.io/instance": "isthmus"}
    spec["ports"][0]["targetPort"] = 9000
    assert checks.serve_port_exposure(exposed) == [
        "Service/isthmus-ads-grpc: a load balancer in front of Ray pods (Serve's plaintext "
        "gRPC port 9000)"
    ]

    # A terminator that would let a call through without a verified client certificate.
    unverified = "Service/isthmus-ads-grpc: port 9000 reaches Deployment/isthmus-serve-terminator"
    for weaker in ("ssl_verify_client optional;", "ssl_verify_client off;", ""):
        loose = copy.deepcopy(docs)
        data = one(loose, "ConfigMap", "isthmus-serve-terminator")["data"]
        data["nginx.conf"] = data["nginx.conf"].replace("ssl_verify_client on;", weaker)
        assert checks.terminator_violations(loose) == [
            "ConfigMap/isthmus-serve-terminator: a gRPC server does not require client "
            "certificates (ssl_verify_client on)",
            f"{unverified} on 9443, where no client certificate is required",
        ]
    plaintext = copy.deepcopy(docs)
    data = one(plaintext, "ConfigMap", "isthmus-serve-terminator")["data"]
    data["nginx.conf"] = data["nginx.conf"].replace("listen 9443 ssl http2;", "listen 9443 http2;")
    assert "a gRPC server listens without TLS" in checks.terminator_violations(plaintext)[0]
    health = copy.deepcopy(docs)
    one(health, "Service", "isthmus-ads-grpc")["spec"]["ports"][0]["targetPort"] = "health"
    assert checks.terminator_violations(health) == [
        f"{unverified} on 8081, where no client certificate is required"
    ]

    # NetworkPolicies: Serve's port opened to any source, or to every pod of the release (the
    # zone-wide policy as it was, selecting the Ray pods too).
    opened = copy.deepcopy(docs)
    one(opened, "NetworkPolicy", "isthmus-ray")["spec"]["ingress"].append(
        {"ports": [{"port": 9000, "protocol": "TCP"}]}
    )
    assert checks.serve_port_exposure(opened) == [
        "NetworkPolicy/isthmus-ray: any source may reach Serve's plaintext gRPC port"
    ]
    zone_wide = copy.deepcopy(docs)
    del one(zone_wide, "NetworkPolicy", "isthmus-zone")["spec"]["podSelector"]["matchExpressions"]
    (problem,) = checks.serve_port_exposure(zone_wide)
    assert problem.startswith(
        "NetworkPolicy/isthmus-zone: Serve's plaintext gRPC port reachable from pods other "
        "than the terminators and Ray's"
    )
