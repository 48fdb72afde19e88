"""The Chaos Mesh faults of the drills' Kubernetes forms, as specs (pure). The chart renders
the same faults for in-cluster, scheduled runs (templates/drills/chaos.yaml); a test renders
the chart and compares, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

from chaos.kubernetes.cluster import COMPONENT, INSTANCE

# The label the chart puts on every workload that serves a SENSITIVE RPC.
SENSITIVE_LABEL = "isthmus.io/sensitivity"


def gateway_pods(namespace: str, release: str) -> dict[str, Any]:
    return {"namespaces": [namespace], "labelSelectors": {INSTANCE: release, COMPONENT: "gateway"}}


def private_partition(namespace: str, release: str, duration: str) -> dict[str, Any]:
    """private-partition: no traffic either way between the gateway's pods and the pods
    serving SENSITIVE RPCs."""
    sensitive = {
        "namespaces": [namespace],
        "expressionSelectors": [
            {"key": SENSITIVE_LABEL, "operator": "In", "values": ["SENSITIVE"]}
        ],
    }
    return {
        "action": "partition",
        "mode": "all",
        "selector": gateway_pods(namespace, release),
        "direction": "both",
        "duration": duration,
        "target": {"mode": "all", "selector": sensitive},
    }


def public_link(
    namespace: str,
    release: str,
    hosts: list[str],
    latency_ms: int,
    loss_percent: float,
    duration: str,
) -> dict[str, Any]:
    """latency-loss: delay and loss on the gateway's traffic to the public zones' addresses
    (`hosts`: the zones' load balancers, outside the cluster)."""
    return {
        **_to_hosts("netem", "latency-loss", namespace, release, hosts, duration),
        "delay": {"latency": f"{int(latency_ms)}ms", "jitter": "0ms", "correlation": "0"},
        "loss": {"loss": _number(loss_percent), "correlation": "0"},
    }


def public_zone_cut(
    namespace: str, release: str, hosts: list[str], duration: str
) -> dict[str, Any]:
    """zone-out: the gateway's traffic to one public zone's addresses dropped."""
    return _to_hosts("partition", "zone-out", namespace, release, hosts, duration)


def _to_hosts(
    action: str, drill: str, namespace: str, release: str, hosts: list[str], duration: str
) -> dict[str, Any]:
    """A fault on the gateway pods' traffic to addresses outside the cluster."""
    if not hosts:
        raise ValueError(f"{drill} needs the public zones' hosts")
    return {
        "action": action,
        "mode": "all",
        "selector": gateway_pods(namespace, release),
        "direction": "to",
        "duration": duration,
        "externalTargets": list(hosts),
    }


def _number(value: float) -> str:
    """Chaos Mesh takes percentages as strings: "10", "2.5"."""
    return str(int(value)) if float(value).is_integer() else str(value)
