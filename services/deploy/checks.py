"""Policy checks on rendered manifests (pure): what must hold of any release of the chart,
whatever the values, beyond what schemas can say. The chart's tests run them on every
rendering; each returns the violations it found (empty = none), naming the object.

- SENSITIVE workloads only in a private release;
- a private service reachable only from this release's gateway pods (no namespaceSelector,
  no ipBlock, no rule without `from` on its gRPC port), behind a default-deny policy;
- drills only in allowlisted namespaces, with Chaos Mesh's own modes and actions;
- the RayService's serveConfigV2 equal to what AdsConfig says.
"""

from __future__ import annotations

from typing import Any

import yaml

from services.deploy.serve_config import serve_config_drift
from services.public.ads.config import AdsConfig

Manifest = dict[str, Any]
PRIVATE_KINDS = {"profile", "orders"}
CHAOS_MODES = {"one", "all", "fixed", "fixed-percent", "random-max-percent"}


def sensitive_placement(docs: list[Manifest], zone_kind: str) -> list[str]:
    """Workloads labelled SENSITIVE (or running profile/orders) in a public release."""
    if zone_kind != "public":
        return []
    out = []
    for doc in docs:
        labels = doc.get("metadata", {}).get("labels", {})
        args = _container_args(doc)
        if labels.get("isthmus.io/sensitivity") == "SENSITIVE" or any(
            a in PRIVATE_KINDS for a in args[1:2]
        ):
            out.append(f"{doc['kind']}/{doc['metadata']['name']}: SENSITIVE in a public zone")
    return out


def private_service_exposure(docs: list[Manifest]) -> list[str]:
    """Ingress to the private services' pods from anything but this release's gateway."""
    services = [d for d in docs if d["kind"] == "Deployment" and _sensitivity(d) == "SENSITIVE"]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    out = []
    if services and not any(_is_default_deny(p) for p in policies):
        out.append("no default-deny NetworkPolicy in a namespace with SENSITIVE services")
    for deployment in services:
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        instance = pod_labels.get("app.kubernetes.io/instance")
        grpc_ports = {
            p["containerPort"]
            for c in deployment["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
            if p.get("name") == "grpc"
        }
        for policy in policies:
            spec = policy["spec"]
            if not _selects(spec.get("podSelector", {}), pod_labels):
                continue
            for rule in spec.get("ingress", []):
                ports = {p.get("port") for p in rule.get("ports", [])} or {None}
                if not (ports & (grpc_ports | {None})):
                    continue  # not the gRPC port (e.g. the health port)
                sources = rule.get("from")
                name = f"NetworkPolicy/{policy['metadata']['name']}"
                if not sources:
                    out.append(f"{name}: any source may reach {deployment['metadata']['name']}")
                    continue
                for source in sources:
                    if "namespaceSelector" in source or "ipBlock" in source:
                        out.append(
                            f"{name}: {deployment['metadata']['name']} reachable from another "
                            f"namespace or address block ({source})"
                        )
                    elif not _is_gateway(source.get("podSelector", {}), instance):
                        out.append(
                            f"{name}: {deployment['metadata']['name']} reachable from pods "
                            f"other than the gateway ({source})"
                        )
    return out


def drill_violations(docs: list[Manifest], allowed_namespaces: list[str]) -> list[str]:
    """Chaos Mesh resources aimed outside the allowlist, or with an invalid mode/value."""
    out = []
    for doc in docs:
        if not doc.get("apiVersion", "").startswith("chaos-mesh.org/"):
            continue
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        spec = doc["spec"]
        if doc["kind"] == "Schedule":
            spec = spec.get(_lower_first(spec.get("type", "")), {})
        for selector in _selectors(spec):
            for namespace in selector.get("namespaces", []) or ["<any>"]:
                if namespace not in allowed_namespaces:
                    out.append(f"{name}: namespace {namespace} is not allowlisted for drills")
        mode = spec.get("mode")
        if mode not in CHAOS_MODES:
            out.append(f"{name}: mode {mode!r} is not one of {sorted(CHAOS_MODES)}")
        if mode in {"fixed-percent", "random-max-percent"}:
            value = str(spec.get("value", ""))
            if not value.isdigit() or not 0 < int(value) <= 100:
                out.append(f"{name}: {mode} needs a value in 1..100, not {value!r}")
    return out


def serve_config_violations(docs: list[Manifest], ads: AdsConfig) -> list[str]:
    """RayServices whose serveConfigV2 differs from `ads`."""
    out = []
    for doc in docs:
        if doc["kind"] != "RayService":
            continue
        rendered = yaml.safe_load(doc["spec"]["serveConfigV2"])
        out += [
            f"RayService/{doc['metadata']['name']}: {d}" for d in serve_config_drift(rendered, ads)
        ]
    return out


def _container_args(doc: Manifest) -> list[str]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    containers = spec.get("containers", [])
    return [str(a) for a in containers[0].get("args", [])] if containers else []


def _sensitivity(doc: Manifest) -> str | None:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"].get("labels", {})
    return labels.get("isthmus.io/sensitivity")


def _is_default_deny(policy: Manifest) -> bool:
    spec = policy["spec"]
    return (
        spec.get("podSelector") == {}
        and "Ingress" in spec.get("policyTypes", [])
        and not spec.get("ingress")
    )


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """matchLabels semantics (matchExpressions are not used by the chart: treated as all)."""
    match = selector.get("matchLabels", {})
    return all(labels.get(k) == v for k, v in match.items())


def _is_gateway(selector: dict[str, Any], instance: str | None) -> bool:
    match = selector.get("matchLabels", {})
    return (
        match.get("app.kubernetes.io/component") == "gateway"
        and match.get("app.kubernetes.io/instance") == instance
        and not selector.get("matchExpressions")
    )


def _selectors(spec: dict[str, Any]) -> list[dict[str, Any]]:
    found = [spec.get("selector", {})]
    target = spec.get("target")
    if isinstance(target, dict):
        found.append(target.get("selector", {}))
    return found


def _lower_first(kind: str) -> str:
    return kind[:1].lower() + kind[1:]
