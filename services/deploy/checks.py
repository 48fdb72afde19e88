"""Policy checks on rendered manifests (pure): what must hold of any release of the chart,
whatever the values, beyond what schemas can say. The chart's tests run them on every
rendering; each returns the violations it found (empty = none), naming the object.

- SENSITIVE workloads only in a private release;
- a private service reachable only from this release's gateway pods (no namespaceSelector,
  no ipBlock, no rule without `from` on its gRPC port), behind a default-deny policy;
- drills only in allowlisted namespaces, with Chaos Mesh's own modes and actions;
- the RayService's serveConfigV2 equal to what AdsConfig says;
- Serve's plaintext gRPC port (no TLS of its own) never behind a load balancer, and reachable
  in the namespace only from the mTLS terminators (and Ray's own pods); every terminator
  requires a client certificate on every port a load balancer sends it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from services.deploy.serve_config import serve_config_drift
from services.public.ads.config import AdsConfig

Manifest = dict[str, Any]
PRIVATE_KINDS = {"profile", "orders"}
CHAOS_MODES = {"one", "all", "fixed", "fixed-percent", "random-max-percent"}
SERVE_GRPC_PORT = 9000  # serve_config.GRPC_PORT: Serve's gRPC proxy, plaintext
# Labels KubeRay gives Ray pods besides the template's; cluster and identifier are generated.
KUBERAY_GENERATED = {"ray.io/cluster", "ray.io/identifier"}


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


def serve_port_exposure(docs: list[Manifest]) -> list[str]:
    """Serve's plaintext gRPC port reachable past the mTLS terminators: a load balancer that
    selects Ray pods, or a NetworkPolicy rule on Ray pods that lets anything but a terminator
    or a Ray pod reach that port."""
    ray = [labels for _, labels, _ in _ray_pods(docs)]
    out = [
        f"Service/{s['metadata']['name']}: a load balancer in front of Ray pods (Serve's "
        f"plaintext gRPC port {SERVE_GRPC_PORT})"
        for s in _load_balancers(docs)
        if any(_service_selects(s["spec"].get("selector") or {}, labels) for labels in ray)
    ]
    allowed = ray + [labels for _, labels, _, _ in _terminator_pods(docs)]
    pods = [labels for _, labels, _ in _pods(docs)]
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        spec = policy["spec"]
        if not any(_selects(spec.get("podSelector", {}), labels) for labels in ray):
            continue
        for rule in spec.get("ingress", []):
            if _covers(rule.get("ports", []), SERVE_GRPC_PORT, "grpc"):
                name = f"NetworkPolicy/{policy['metadata']['name']}"
                out += _foreign_sources(name, rule.get("from"), allowed, pods)
    return out


def terminator_violations(docs: list[Manifest]) -> list[str]:
    """Terminators (an nginx.conf with grpc_pass) that would pass a call on without a
    verified client certificate: a gRPC server block without TLS 1.2+ and `ssl_verify_client
    on`, or a load balancer that sends traffic to any other port of a terminator pod."""
    out = []
    for name, conf in _nginx_confs(docs).items():
        for server in _nginx_blocks(conf, "server"):
            if "grpc_pass" in server:
                out += [f"ConfigMap/{name}: {problem}" for problem in _tls_problems(server)]
    for pod, labels, spec, conf in _terminator_pods(docs):
        safe = {
            port
            for server in _nginx_blocks(conf, "server")
            if "grpc_pass" in server and not _tls_problems(server)
            for port in _listen_ports(server)
        }
        for service in _load_balancers(docs):
            if not _service_selects(service["spec"].get("selector") or {}, labels):
                continue
            for port in service["spec"].get("ports", []):
                target = _container_port(spec, port.get("targetPort", port["port"]))
                if target not in safe:
                    out.append(
                        f"Service/{service['metadata']['name']}: port {port['port']} reaches "
                        f"{pod} on {target}, where no client certificate is required"
                    )
    return out


def _ray_pods(docs: list[Manifest]) -> Iterator[tuple[str, dict[str, str], dict[str, Any]]]:
    """The pods a RayService's groups become, with the labels KubeRay adds (a template's own
    labels win, as in KubeRay)."""
    for doc in (d for d in docs if d["kind"] == "RayService"):
        cluster = doc["spec"]["rayClusterConfig"]
        groups = [("head", "headgroup", cluster["headGroupSpec"])] + [
            ("worker", g["groupName"], g) for g in cluster.get("workerGroupSpecs", [])
        ]
        for node_type, group, spec in groups:
            template = spec["template"]
            labels = {
                "ray.io/is-ray-node": "yes",
                "ray.io/node-type": node_type,
                "ray.io/group": group,
                **template.get("metadata", {}).get("labels", {}),
            }
            yield f"RayService/{doc['metadata']['name']}/{group}", labels, template["spec"]


def _pods(docs: list[Manifest]) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """Every pod the release makes: (owner, labels, pod spec)."""
    out = list(_ray_pods(docs))
    for doc in docs:
        spec = doc.get("spec", {})
        template = {
            "Pod": doc,
            "CronJob": spec.get("jobTemplate", {}).get("spec", {}).get("template"),
        }.get(doc["kind"], spec.get("template"))
        if isinstance(template, dict) and "spec" in template:
            labels = template.get("metadata", {}).get("labels", {})
            out.append((f"{doc['kind']}/{doc['metadata']['name']}", labels, template["spec"]))
    return out


def _terminator_pods(
    docs: list[Manifest],
) -> Iterator[tuple[str, dict[str, str], dict[str, Any], str]]:
    """Pods that mount a terminator's nginx.conf: (owner, labels, pod spec, the conf)."""
    confs = _nginx_confs(docs)
    for owner, labels, spec in _pods(docs):
        for volume in spec.get("volumes", []):
            name = volume.get("configMap", {}).get("name")
            if name in confs:
                yield owner, labels, spec, confs[name]


def _nginx_confs(docs: list[Manifest]) -> dict[str, str]:
    """ConfigMap name -> nginx.conf (comments dropped), for those that proxy gRPC."""
    out = {}
    for doc in docs:
        conf = (doc.get("data") or {}).get("nginx.conf") if doc["kind"] == "ConfigMap" else None
        if conf and "grpc_pass" in conf:
            out[doc["metadata"]["name"]] = re.sub(r"#[^\n]*", "", conf)
    return out


def _nginx_blocks(conf: str, name: str) -> list[str]:
    """The bodies of every `name { ... }` block, nested blocks included."""
    out = []
    for match in re.finditer(rf"(?m)^\s*{name}\s*\{{", conf):
        depth, i = 1, match.end()
        while depth and i < len(conf):
            depth += {"{": 1, "}": -1}.get(conf[i], 0)
            i += 1
        out.append(conf[match.end() : i - 1])
    return out


def _directives(block: str, name: str) -> list[list[str]]:
    return [m.split() for m in re.findall(rf"(?m)^\s*{name}\s+([^;]*);", block)]


def _tls_problems(server: str) -> list[str]:
    """Why a gRPC server block would take a call without a verified client certificate."""
    out = []
    listens = _directives(server, "listen")
    if not listens or any("ssl" not in listen[1:] for listen in listens):
        out.append("a gRPC server listens without TLS")
    if _directives(server, "ssl_verify_client") != [["on"]]:
        out.append("a gRPC server does not require client certificates (ssl_verify_client on)")
    if not _directives(server, "ssl_client_certificate"):
        out.append("a gRPC server names no CA for client certificates")
    protocols = _directives(server, "ssl_protocols")
    if not protocols or not set(protocols[0]) <= {"TLSv1.2", "TLSv1.3"}:
        out.append(f"a gRPC server allows protocols other than TLS 1.2/1.3 ({protocols})")
    return out


def _listen_ports(server: str) -> set[int]:
    return {int(listen[0].rsplit(":", 1)[-1]) for listen in _directives(server, "listen")}


def _load_balancers(docs: list[Manifest]) -> list[Manifest]:
    return [d for d in docs if d["kind"] == "Service" and d["spec"].get("type") == "LoadBalancer"]


def _service_selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """A Service's selector against a pod's labels; KubeRay's generated values match any."""
    return bool(selector) and all(
        k in KUBERAY_GENERATED or labels.get(k) == v for k, v in selector.items()
    )


def _container_port(spec: dict[str, Any], target: int | str) -> int | str:
    """A Service's targetPort as a number (a name resolved against the pod's ports)."""
    for container in spec.get("containers", []):
        for port in container.get("ports", []):
            if port.get("name") == target:
                return int(port["containerPort"])
    return target


def _covers(ports: list[dict[str, Any]], number: int, name: str) -> bool:
    """Whether a NetworkPolicy rule's ports include `number` (or its port name)."""
    if not ports:
        return True
    for port in ports:
        value = port.get("port")
        if value is None or value == name:
            return True
        if isinstance(value, int) and value <= number <= port.get("endPort", value):
            return True
    return False


def _foreign_sources(
    name: str,
    sources: list[dict[str, Any]] | None,
    allowed: list[dict[str, str]],
    pods: list[dict[str, str]],
) -> list[str]:
    """Sources of a rule on Serve's port that are not only terminators and Ray pods of this
    release."""
    if not sources:
        return [f"{name}: any source may reach Serve's plaintext gRPC port"]
    out = []
    for source in sources:
        selector = source.get("podSelector", {})
        strangers = [p for p in pods if _selects(selector, p) and p not in allowed]
        if "namespaceSelector" in source or "ipBlock" in source:
            out.append(
                f"{name}: Serve's plaintext gRPC port reachable from another namespace or "
                f"address block ({source})"
            )
        elif strangers or "app.kubernetes.io/instance" not in selector.get("matchLabels", {}):
            out.append(
                f"{name}: Serve's plaintext gRPC port reachable from pods other than the "
                f"terminators and Ray's ({source})"
            )
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
    """A label selector (matchLabels and matchExpressions) against a pod's labels."""
    match = selector.get("matchLabels", {})
    if not all(labels.get(k) == v for k, v in match.items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = set(expression.get("values", []))
        found = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(operator, False)
        if not found:
            return False
    return True


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
