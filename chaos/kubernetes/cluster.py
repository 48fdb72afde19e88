"""Connection to a cluster for the Kubernetes actions and probes, and the chart's selectors.

Activities take `kubeconfig`/`context` (a real cluster; default: the usual kubeconfig, or the
in-cluster service account) or `api_url` (an API server reached directly without auth: the
tests' fake API, or `kubectl proxy` on 127.0.0.1). The selectors are the chart's labels, so
the drills touch exactly what one release deployed.
"""

from __future__ import annotations

from typing import Any

INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
CHAOS_GROUP, CHAOS_VERSION = "chaos-mesh.org", "v1alpha1"
CHAOS_PLURALS = {"PodChaos": "podchaos", "NetworkChaos": "networkchaos", "Schedule": "schedules"}


def selector(release: str, component: str) -> str:
    """The label selector of one component of one release (the chart's labels)."""
    return f"{INSTANCE}={release},{COMPONENT}={component}"


def api_client(kubeconfig: str = "", context: str = "", api_url: str = "") -> Any:
    """An ApiClient for a kubeconfig context, the in-cluster account, or a plain URL."""
    from kubernetes import client, config

    if api_url:
        configuration = client.Configuration()
        configuration.host = api_url
        return client.ApiClient(configuration)
    try:
        return config.new_client_from_config(
            config_file=kubeconfig or None, context=context or None
        )  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()


def parse_hosts(hosts: str | list[str]) -> list[str]:
    """Addresses from a list or a comma-separated string (experiment configuration)."""
    if isinstance(hosts, str):
        return [h.strip() for h in hosts.split(",") if h.strip()]
    return list(hosts)
