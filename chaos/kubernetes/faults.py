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


def sensitive_pods(namespace: str) -> dict[str, Any]:
    return {
        "namespaces": [namespace],
        "expressionSelectors": [
            {"key": SENSITIVE_LABEL, "operator": "In", "values": ["SENSITIVE"]}
        ],
    }


def private_partition(namespace: str, release: str, duration: str) -> dict[str, Any]:
    """private-partition: no traffic either way between the gateway's pods and the pods
    serving SENSITIVE RPCs."""
    return {
        "action": "partition",
        "mode": "all",
        "selector": gateway_pods(namespace, release),
        "direction": "both",
        "duration": duration,
        "target": {"mode": "all", "selector": sensitive_pods(namespace)},
    }


def database_cut(namespace: str, hosts: list[str], duration: str) -> dict[str, Any]:
    """db-down: the pods serving SENSITIVE RPCs cut off from the database's addresses
    (`hosts`: the PostgreSQL the chart's Secret points at, outside the release). On a
    cluster the database is a managed service the drill cannot stop, so it takes the
    database away from the services instead: to them, the same outage."""
    return _to_hosts("partition", "db-down", sensitive_pods(namespace), hosts, duration)


def sync_pods(namespace: str, release: str) -> dict[str, Any]:
    """The pods of the release's sync Jobs (scheduled or started by a drill)."""
    return {"namespaces": [namespace], "labelSelectors": {INSTANCE: release, COMPONENT: "sync"}}


def landing_cut(namespace: str, release: str, hosts: list[str], duration: str) -> dict[str, Any]:
    """sync-partition: the sync's pods cut off from the landing log's addresses (`hosts`:
    the object store or file server holding it, outside the cluster). A run that cannot read
    its batch must fail, not commit it without the files; the next run catches up."""
    return _to_hosts("partition", "sync-partition", sync_pods(namespace, release), hosts, duration)


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
        **_to_hosts("netem", "latency-loss", gateway_pods(namespace, release), hosts, duration),
        "delay": {"latency": f"{int(latency_ms)}ms", "jitter": "0ms", "correlation": "0"},
        "loss": {"loss": _number(loss_percent), "correlation": "0"},
    }


def public_zone_cut(
    namespace: str, release: str, hosts: list[str], duration: str
) -> dict[str, Any]:
    """zone-out: the gateway's traffic to one public zone's addresses dropped."""
    return _to_hosts("partition", "zone-out", gateway_pods(namespace, release), hosts, duration)


def _to_hosts(
    action: str, drill: str, pods: dict[str, Any], hosts: list[str], duration: str
) -> dict[str, Any]:
    """A fault on the traffic of the `pods` selected to addresses outside the cluster."""
    if not hosts:
        raise ValueError(f"{drill} needs the hosts it cuts off")
    return {
        "action": action,
        "mode": "all",
        "selector": pods,
        "direction": "to",
        "duration": duration,
        "externalTargets": list(hosts),
    }


def _number(value: float) -> str:
    """Chaos Mesh takes percentages as strings: "10", "2.5"."""
    return str(int(value)) if float(value).is_integer() else str(value)
