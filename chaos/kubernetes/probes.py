"""Probes of a Kubernetes deployment of isthmus: they only observe. Each returns a number or
bool that an experiment's tolerance judges.

    ready_pods(label_selector=..., namespace=...)              pods Ready
    ray_worker_pods_ready(namespace=..., release=...)          the release's Ray workers
    ray_workers_at_floor(minimum=..., namespace=..., release=...)
    rayservice_healthy(name=..., namespace=...)                RayService Running, endpoints up
    serve_endpoints(name=..., namespace=...)                   Serve endpoints of a RayService
    deployment_available(name=..., namespace=...)              replicas available == desired
"""

from __future__ import annotations

from typing import Any

from chaos.kubernetes.cluster import api_client, selector


def ready_pod_names(
    label_selector: str,
    namespace: str = "default",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> list[str]:
    """The names of the Ready pods matching `label_selector`, sorted."""
    from kubernetes import client

    core = client.CoreV1Api(api_client(kubeconfig, context, api_url))
    found: Any = core.list_namespaced_pod(namespace, label_selector=label_selector)
    return sorted(str(p.metadata.name) for p in found.items if _ready(p))


def ready_pods(
    label_selector: str,
    namespace: str = "default",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> int:
    """How many pods matching `label_selector` are Running with condition Ready=True."""
    return len(ready_pod_names(label_selector, namespace, kubeconfig, context, api_url))


def ray_worker_pods_ready(
    namespace: str = "isthmus-public-a",
    release: str = "isthmus",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> int:
    """Ready Ray worker pods of the release."""
    return ready_pods(selector(release, "ray-worker"), namespace, kubeconfig, context, api_url)


def ray_workers_at_floor(
    minimum: int | str = 1,
    namespace: str = "isthmus-public-a",
    release: str = "isthmus",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> bool:
    """At least `minimum` of the release's Ray worker pods are Ready (the worker group's
    floor; a string from an experiment's configuration is accepted)."""
    ready = ray_worker_pods_ready(namespace, release, kubeconfig, context, api_url)
    return ready >= int(minimum)


def rayservice_status(
    name: str = "isthmus-ads",
    namespace: str = "isthmus-public-a",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> dict[str, Any]:
    """The RayService's status as KubeRay reports it (serviceStatus, numServeEndpoints, ...)."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api_client(kubeconfig, context, api_url))
    found: Any = custom.get_namespaced_custom_object("ray.io", "v1", namespace, "rayservices", name)
    status: dict[str, Any] = found.get("status", {})
    return status


def serve_endpoints(
    name: str = "isthmus-ads",
    namespace: str = "isthmus-public-a",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> int:
    """Serve endpoints (proxies) the RayService's active cluster exposes."""
    return int(
        rayservice_status(name, namespace, kubeconfig, context, api_url).get("numServeEndpoints", 0)
    )


def rayservice_healthy(
    name: str = "isthmus-ads",
    namespace: str = "isthmus-public-a",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> bool:
    """The RayService is Running with at least one Serve endpoint."""
    status = rayservice_status(name, namespace, kubeconfig, context, api_url)
    return status.get("serviceStatus") == "Running" and int(status.get("numServeEndpoints", 0)) > 0


def deployments_available(
    names: str | list[str],
    namespace: str = "default",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> bool:
    """Every named Deployment (a list, or comma-separated) has every replica available."""
    listed = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
    return all(
        deployment_available(n, namespace, kubeconfig, context, api_url) for n in listed if n
    )


def deployment_available(
    name: str,
    namespace: str = "default",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> bool:
    """Every desired replica of the Deployment is available."""
    from kubernetes import client

    apps = client.AppsV1Api(api_client(kubeconfig, context, api_url))
    found: Any = apps.read_namespaced_deployment(name, namespace)
    desired = found.spec.replicas or 0
    return bool(desired > 0 and (found.status.available_replicas or 0) >= desired)


def _ready(pod: Any) -> bool:
    if not pod.status or pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
