"""`isthmus render helm-values`: one zone of the topology as the Helm chart's values (pure).

The topology that drives `isthmus up` drives the Kubernetes releases too: a zone's services,
their ports and sensitivity (from the contract), the gateway's public clusters in failover
order, and the public zone's Serve config from `AdsConfig`. A service with any SENSITIVE RPC
is never written into a public zone's values: the call is refused with the service named
(and the chart refuses such values again at install).

Cross-cluster hop (a decision, see the README's deployment section): locally the gateway
balances over Serve's direct-ingress replica endpoints; across clusters those pod addresses
are not routable, so each public zone exposes Serve's gRPC proxies and the event service
behind an internal load balancer, named `ads.<zone>.<domain>` / `events.<zone>.<domain>`,
reached over the private interconnect with mutual TLS (the gateway's client certificate,
the zone's CA). The gateway's outlier detection and failover then act per zone.
"""

from __future__ import annotations

import math
from typing import Any

from services.contract.descriptors import MethodInfo
from services.deploy.serve_config import GRPC_PORT, in_image, serve_config
from services.deploy.values import ChartValues
from services.public.ads.config import AdsConfig
from services.topology.model import ServiceKind, Topology, ZoneKind, ZoneSpec

DEFAULT_DOMAIN = "isthmus.internal"
EVENTS_PORT = 50072


class RenderError(ValueError):
    """The topology cannot be rendered as asked; the message names what is wrong."""


def zone_values(
    topology: Topology,
    zone_name: str,
    table: dict[str, MethodInfo],
    ads: AdsConfig | None = None,
    domain: str = DEFAULT_DOMAIN,
) -> dict[str, Any]:
    """The chart values of `zone_name` (only what differs from the chart's defaults)."""
    try:
        zone = topology.zone(zone_name)
    except KeyError as exc:
        raise RenderError(str(exc.args[0])) from None
    services = [  # another team's services are its team's to deploy, not this chart's
        _service(zone, spec.name, spec.kind, table) for spec in zone.services if spec.run_by_isthmus
    ]
    sensitive = [s["name"] for s in services if s["sensitivity"] == "SENSITIVE"]
    if zone.kind is ZoneKind.PUBLIC and sensitive:
        raise RenderError(
            f"service(s) {', '.join(sensitive)} serve SENSITIVE RPCs and cannot be rendered "
            f"into public zone {zone.name}'s release"
        )
    values: dict[str, Any] = {
        "zone": {"name": zone.name, "kind": zone.kind.value},
        "services": [s for s in services if s["kind"] != ServiceKind.ADS.value],
        "observability": {
            "publicMethods": sorted(m.path.lstrip("/") for m in table.values() if m.is_public),
            "sensitiveMethods": sorted(
                m.path.lstrip("/") for m in table.values() if not m.is_public
            ),
        },
    }
    if zone.kind is ZoneKind.PRIVATE:
        values["gateway"] = {
            "enabled": True,
            "port": topology.gateway.listen.port or 50051,
            "publicClusters": [_public_cluster(z, domain) for z in topology.public_zones()],
        }
    else:
        config = in_image(ads or AdsConfig())
        values["public"] = {
            "workerGroup": _worker_group(zone, config),
            "serveConfig": serve_config(config),
        }
    ChartValues.model_validate(values)  # the chart's own schema, before Helm sees it
    return values


def _public_cluster(zone: ZoneSpec, domain: str) -> dict[str, Any]:
    """The gateway's view of one public zone: its internal load balancer's names."""
    names = {s.kind: s.name for s in zone.services}
    out: dict[str, Any] = {"zone": zone.name, "priority": zone.priority}
    for kind, label, port in (
        (ServiceKind.ADS, "ads", GRPC_PORT),
        (ServiceKind.EVENTS, "events", EVENTS_PORT),
    ):
        if kind not in names:
            raise RenderError(f"public zone {zone.name} has no {label} service")
        out[label] = {"name": names[kind], "host": f"{label}.{zone.name}.{domain}", "port": port}
    return out


def _service(
    zone: ZoneSpec, name: str, kind: ServiceKind, table: dict[str, MethodInfo]
) -> dict[str, Any]:
    proto = next(s.proto_service for s in zone.services if s.name == name)
    methods = [m for m in table.values() if m.service == proto]
    if not methods:
        raise RenderError(f"service {name}: {proto} has no RPCs in the contract")
    public = all(m.is_public for m in methods)
    spec = next(s for s in zone.services if s.name == name)
    port = spec.endpoints[0].port if spec.endpoints else 0
    return {
        "name": name,
        "kind": kind.value,
        "sensitivity": "PUBLIC" if public else "SENSITIVE",
        "port": port or (GRPC_PORT if kind is ServiceKind.ADS else EVENTS_PORT),
    }


def _worker_group(zone: ZoneSpec, ads: AdsConfig) -> dict[str, Any]:
    """Ray worker pods: the topology's worker nodes at least; enough for Serve's replica
    ceiling at most (each replica reserves `replica_num_cpus` of a 1-CPU worker)."""
    floor = max(1, zone.ray.worker_nodes if zone.ray is not None else 1)
    ceiling = math.ceil(ads.autoscaling.max_replicas * ads.replica_num_cpus)
    return {"minReplicas": floor, "maxReplicas": max(floor, ceiling)}
