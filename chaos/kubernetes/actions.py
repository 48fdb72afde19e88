"""Actions on a Kubernetes deployment of isthmus: they change things. Plain functions with
keyword arguments, as Chaos Toolkit calls them; each returns what it did.

    kill_ray_worker_pods(percent=30, namespace=..., release=...)   public-nodes-30
    kill_gateway_pods(count=1, namespace=..., release=...)          gateway-instance-killed
    partition_private_services(namespace=..., release=...)          private-partition
    degrade_public_link(hosts=..., latency_ms=..., loss_percent=...) latency-loss
    cut_public_zone(hosts=..., namespace=..., release=...)          zone-out
    delete_pods(label_selector=..., percent=..., namespace=...)     any workload
    scale_deployment(name=..., replicas=..., namespace=...)         e.g. a zone's events
    create_chaos(kind=..., name=..., spec=..., namespace=...)       a Chaos Mesh fault
    delete_chaos(kind=..., name=..., namespace=...)                 its rollback

Connection arguments on every activity: `kubeconfig`, `context`, `api_url` (cluster.py).
"""

from __future__ import annotations

import math
import random
from typing import Any

from chaos.kubernetes import faults
from chaos.kubernetes.cluster import (
    CHAOS_GROUP,
    CHAOS_PLURALS,
    CHAOS_VERSION,
    api_client,
    parse_hosts,
    selector,
)


def victims(names: list[str], percent: float, seed: int | None = None) -> list[str]:
    """`percent` of `names`, rounded up (30% of 3 pods is 1; of 4 is 2), chosen at random
    (pure; `seed` makes it repeatable)."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], not {percent}")
    count = min(len(names), math.ceil(len(names) * percent / 100))
    return sorted(random.Random(seed).sample(sorted(names), count))  # noqa: S311 (fault choice)


def delete_pods(
    label_selector: str,
    percent: float = 30.0,
    namespace: str = "default",
    grace_period_s: int = 0,
    seed: int | None = None,
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> list[str]:
    """Delete `percent` (rounded up) of the running pods matching `label_selector`, with no
    grace period by default (a node lost, not a rollout). Returns the pods deleted."""
    from kubernetes import client

    core = client.CoreV1Api(api_client(kubeconfig, context, api_url))
    pods: list[Any] = core.list_namespaced_pod(namespace, label_selector=label_selector).items
    running = [str(p.metadata.name) for p in pods if p.status and p.status.phase == "Running"]
    if not running:
        raise RuntimeError(f"no running pod in {namespace} matches {label_selector}")
    chosen = victims(running, percent, seed)
    for name in chosen:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace_period_s)
    return chosen


def kill_ray_worker_pods(
    percent: float = 30.0,
    namespace: str = "isthmus-public-a",
    release: str = "isthmus",
    seed: int | None = None,
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> list[str]:
    """public-nodes-30 on Kubernetes: delete `percent` of the release's Ray worker pods (the
    replicas on them go with them); KubeRay and Serve bring them back."""
    return delete_pods(
        selector(release, "ray-worker"),
        percent,
        namespace,
        seed=seed,
        kubeconfig=kubeconfig,
        context=context,
        api_url=api_url,
    )


def kill_gateway_pods(
    count: int | str = 1,
    namespace: str = "isthmus-private",
    release: str = "isthmus",
    timeout_s: float | str = 180.0,
    seed: int | None = None,
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> dict[str, Any]:
    """gateway-instance-killed on Kubernetes: delete `count` of the release's Ready gateway
    pods without a grace period (the Service sends new connections to the others, and the
    callers' retries carry the calls in flight), then wait until as many gateway pods as
    were Ready before (the HPA's count, whatever it is) are Ready again, none of them a
    deleted one. Refuses to delete every gateway pod. Returns the pods deleted and the
    seconds to recover."""
    from kubernetes import client

    from chaos.kubernetes.probes import ready_pod_names

    count = int(count)  # experiment configuration gives strings
    core = client.CoreV1Api(api_client(kubeconfig, context, api_url))
    label = selector(release, "gateway")
    ready = ready_pod_names(label, namespace, kubeconfig, context, api_url)
    if count >= len(ready):
        raise RuntimeError(
            f"{len(ready)} gateway pod(s) Ready in {namespace}: deleting {count} would close "
            "the door"
        )
    chosen = sorted(random.Random(seed).sample(ready, count))  # noqa: S311 (fault choice)
    for name in chosen:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    recovered_s = wait_for_ready_pods(
        label, len(ready), namespace, timeout_s, kubeconfig, context, api_url, excluding=chosen
    )
    return {"deleted": chosen, "recovered_s": recovered_s}


def partition_private_services(
    namespace: str = "isthmus-private",
    release: str = "isthmus",
    duration: str = "60s",
    name: str = "private-partition",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> str:
    """private-partition on Kubernetes: a NetworkChaos partition between the gateway's pods
    and the pods serving SENSITIVE RPCs, for `duration` (Chaos Mesh lifts it after that;
    `delete_chaos` lifts it at once)."""
    spec = faults.private_partition(namespace, release, duration)
    return create_chaos("NetworkChaos", name, spec, namespace, kubeconfig, context, api_url)


def degrade_public_link(
    hosts: str | list[str],
    latency_ms: int | str = 100,
    loss_percent: float | str = 10,
    namespace: str = "isthmus-private",
    release: str = "isthmus",
    duration: str = "60s",
    name: str = "latency-loss",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> str:
    """latency-loss on Kubernetes: delay and loss on the gateway's traffic to the public
    zones' addresses (`hosts`, a list or comma-separated)."""
    spec = faults.public_link(
        namespace, release, parse_hosts(hosts), int(latency_ms), float(loss_percent), duration
    )
    return create_chaos("NetworkChaos", name, spec, namespace, kubeconfig, context, api_url)


def cut_public_zone(
    hosts: str | list[str],
    namespace: str = "isthmus-private",
    release: str = "isthmus",
    duration: str = "60s",
    name: str = "zone-out",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> str:
    """zone-out on Kubernetes: the gateway's traffic to one public zone's addresses dropped
    (`hosts`, a list or comma-separated): the gateway must fail over to the next zone."""
    spec = faults.public_zone_cut(namespace, release, parse_hosts(hosts), duration)
    return create_chaos("NetworkChaos", name, spec, namespace, kubeconfig, context, api_url)


def cut_database(
    hosts: str | list[str],
    namespace: str = "isthmus-private",
    duration: str = "60s",
    name: str = "db-down",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> str:
    """db-down on Kubernetes: the pods serving SENSITIVE RPCs cut off from the database's
    addresses (`hosts`, a list or comma-separated): their calls must fail UNAVAILABLE, and
    they must serve again once it is lifted."""
    spec = faults.database_cut(namespace, parse_hosts(hosts), duration)
    return create_chaos("NetworkChaos", name, spec, namespace, kubeconfig, context, api_url)


def hold(seconds: float | str) -> float:
    """Keep the fault on for `seconds` (the steady state is judged after)."""
    import time

    time.sleep(float(seconds))
    return float(seconds)


def scale_deployment(
    name: str,
    replicas: int,
    namespace: str = "default",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> int:
    """Set a Deployment's replicas (its /scale subresource). Returns the previous count, for
    the rollback to restore."""
    from kubernetes import client

    apps = client.AppsV1Api(api_client(kubeconfig, context, api_url))
    scale: Any = apps.read_namespaced_deployment_scale(name, namespace)
    previous = int(scale.spec.replicas)
    apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}})
    return previous


def create_chaos(
    kind: str,
    name: str,
    spec: dict[str, Any],
    namespace: str = "default",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> str:
    """Create a Chaos Mesh object (PodChaos, NetworkChaos, Schedule) in `namespace`, labelled
    as a drill's so `delete_chaos` and reviewers find it. Returns its name."""
    from kubernetes import client

    plural = _plural(kind)
    body = {
        "apiVersion": f"{CHAOS_GROUP}/{CHAOS_VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": {"isthmus.io/drill": name}},
        "spec": spec,
    }
    custom = client.CustomObjectsApi(api_client(kubeconfig, context, api_url))
    custom.create_namespaced_custom_object(CHAOS_GROUP, CHAOS_VERSION, namespace, plural, body)
    return name


def delete_chaos(
    kind: str,
    name: str,
    namespace: str = "default",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> bool:
    """Delete a Chaos Mesh object (the fault stops); True if it existed. A rollback."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    custom = client.CustomObjectsApi(api_client(kubeconfig, context, api_url))
    try:
        custom.delete_namespaced_custom_object(
            CHAOS_GROUP, CHAOS_VERSION, namespace, _plural(kind), name
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _plural(kind: str) -> str:
    if kind not in CHAOS_PLURALS:
        raise ValueError(f"unknown Chaos Mesh kind {kind!r}; known: {', '.join(CHAOS_PLURALS)}")
    return CHAOS_PLURALS[kind]


def wait_for_ready_pods(
    label_selector: str,
    count: int | str,
    namespace: str = "default",
    timeout_s: float | str = 300.0,
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
    excluding: list[str] | None = None,
) -> float:
    """Wait until at least `count` pods matching `label_selector` are Ready, not counting
    those named in `excluding` (pods just deleted, still terminating); returns the seconds
    it took (the drill's time to recover). Raises after `timeout_s`."""
    import time

    from chaos.kubernetes.probes import ready_pod_names

    count, timeout_s = int(count), float(timeout_s)  # experiment configuration gives strings
    gone = set(excluding or [])
    started = time.monotonic()
    while True:
        names = ready_pod_names(label_selector, namespace, kubeconfig, context, api_url)
        if len(set(names) - gone) >= count:
            return round(time.monotonic() - started, 1)
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(
                f"fewer than {count} pods {label_selector} Ready after {timeout_s:.0f}s"
            )
        time.sleep(1.0)
