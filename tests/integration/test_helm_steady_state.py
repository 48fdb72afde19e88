"""The chart's `helm test` pod runs the drills' steady-state probes with what the release
knows: every server's health port; in the private release, every gateway pod's counters
(through a headless Service), the contract's method classes, the public zones' cluster
names and the SLO -- parsed by the probe's own argument parser, so the two cannot drift. And
the database cut (db-down) renders only with its hosts."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from services.deploy import steady_state
from services.deploy.values import ChartValues
from tests.support.helm_chart import NAMESPACES, merged, render, zone_base

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (scripts/setup installs it)")
pytestmark = pytest.mark.integration


def probe_args(docs: list[dict[str, Any]]) -> argparse.Namespace | None:
    (pod,) = [
        d for d in docs if d["kind"] == "Pod" and d["metadata"]["name"].endswith("-steady-state")
    ]
    command = pod["spec"]["containers"][0]["command"]
    assert command[:3] == ["python", "-m", "services.deploy.steady_state"]
    parser_args: list[str] = [str(a) for a in command[3:]]
    captured: dict[str, argparse.Namespace] = {}

    def gateway_checks(args: argparse.Namespace) -> list[tuple[bool, str]]:
        captured["args"] = args
        return [(True, "captured")]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(steady_state, "gateway_checks", gateway_checks)
        patch.setattr(steady_state, "check", lambda address, timeout_s: "SERVING")
        assert steady_state.main(parser_args) == 0
    return captured.get("args")


def test_the_private_helm_test_reads_every_gateway_pod_against_the_contract_and_slo() -> None:
    values = merged(zone_base("private"), {"observability": {"errorRatioSlo": 0.005},
                                           "helmTest": {"windowSeconds": 45}})  # fmt: skip
    docs = render(values, NAMESPACES["private"])
    args = probe_args(docs)
    assert args is not None
    metrics_port = ChartValues.model_validate(values).gateway.metrics_port
    assert args.gateway_pods == f"isthmus-gateway-pods:{metrics_port}"
    assert args.window_s == 45
    assert args.min_success_ratio == pytest.approx(0.995)
    assert args.require_calls is False
    observability = values["observability"]
    assert args.public_method == observability["publicMethods"]
    assert args.sensitive_method == observability["sensitiveMethods"]
    assert args.sensitive_method
    clusters = [
        c[k]["name"] for c in values["gateway"]["publicClusters"] for k in ("ads", "events")
    ]
    assert args.public_cluster == clusters
    assert len(clusters) >= 2

    (headless,) = [
        d
        for d in docs
        if d["kind"] == "Service" and d["metadata"]["name"] == "isthmus-gateway-pods"
    ]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    (policy,) = [
        d
        for d in docs
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "isthmus-helm-test"
    ]
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert metrics_port in ports


def test_the_public_helm_test_checks_health_only() -> None:
    args = probe_args(render(zone_base("public"), NAMESPACES["public"]))
    assert args is None  # no gateway in a public release: no --gateway-pods


def test_a_database_cut_without_hosts_is_refused_by_the_model_and_the_chart() -> None:
    drills = {"enabled": True, "allowedNamespaces": [NAMESPACES["private"]],
              "databaseCut": {"enabled": True, "hosts": []}}  # fmt: skip
    values = merged(zone_base("private"), {"drills": drills})
    with pytest.raises(ValueError, match="needs the database's hosts"):
        ChartValues.model_validate(values)
    with pytest.raises(Exception, match=r"databaseCut\.hosts"):
        render(values, NAMESPACES["private"])
