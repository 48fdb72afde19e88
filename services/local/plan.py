"""What `isthmus up` starts, as data: one process per service, in start order, with the files
they read. Pure: the launcher (supervisor.py) does the I/O.

Addresses come from the topology; with network namespaces every zone's services listen on the
zone's namespace address instead (see netns.py), and the runtime topology the gateway reads
says so. The ads service is discovered, not listed: its replicas' direct-ingress endpoints
come from the file the ads zone process keeps current.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.local.netns import NetPlan
from services.topology.model import ServiceKind, Topology, ZoneKind

# Demo callers and what each may call (the gateway authorises caller x method).
CALLERS: dict[str, list[str]] = {
    "storefront": [
        "/isthmus.ads.v1.AdService/*",
        "/isthmus.events.v1.EventService/*",
        "/isthmus.profile.v1.ProfileService/ResolveIdentity",
        "/isthmus.profile.v1.ProfileService/GetProfile",
        "/isthmus.profile.v1.ProfileService/UpsertProfile",
    ],
    "checkout": ["/isthmus.orders.v1.OrderService/*", "/isthmus.events.v1.EventService/*"],
    "ad-server": ["/isthmus.ads.v1.AdService/Rank", "/isthmus.events.v1.EventService/Track"],
    "privacy-desk": ["/isthmus.profile.v1.ProfileService/*"],
    "operator": ["/isthmus.gateway.v1.GatewayAdminService/*"],
}


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    zone: str | None  # None: the gateway
    argv: tuple[str, ...]
    ready_timeout_s: float = 60.0


@dataclass(frozen=True)
class LocalPlan:
    run_dir: Path
    processes: tuple[ProcessSpec, ...]
    files: dict[Path, str]  # config files to write before starting
    gateway_address: str
    net: NetPlan | None


def isthmus(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "services.cli", *args)


def build(
    topology: Topology, run_dir: Path, net: NetPlan | None, metrics_port: int = 50059
) -> LocalPlan:
    runtime = runtime_topology(topology, run_dir, net)
    topology_file = run_dir / "topology.yaml"
    private_file = run_dir / "private.yaml"
    gateway_file = run_dir / "gateway.yaml"
    ads_file = run_dir / "ads.yaml"
    private_dir = run_dir.parent / "private"
    secrets = private_dir / "secrets"
    features = topology.data.features_uri
    landing = topology.data.landing_uri
    files = {
        topology_file: _yaml(runtime),
        private_file: _yaml(
            {
                "database_url": f"sqlite:///{private_dir / 'private.db'}",
                "master_key": {"file": str(secrets / "master.key"), "create_if_missing": True},
                "hmac_key": {"file": str(secrets / "hmac.key"), "create_if_missing": True},
                "server": {"caller": _caller_trust(topology, net)},
            }
        ),
        gateway_file: _yaml(gateway_overrides(run_dir, runtime["gateway"]["listen"], metrics_port)),
        ads_file: _yaml({"features_dir": features, "autoscaling": LOCAL_AUTOSCALING}),
    }
    processes: list[ProcessSpec] = []
    for zone_spec in topology.zones:
        zone = {"name": zone_spec.name}
        for spec in zone_spec.services:
            service = {"name": spec.name}
            kind = spec.kind
            host = spec.endpoints[0].host if net is None else net.zone_ip[zone_spec.name]
            listen = f"{host}:{spec.endpoints[0].port}" if spec.endpoints else f"{host}:0"
            common = ("--topology", str(topology_file))
            if kind in (ServiceKind.PROFILE, ServiceKind.ORDERS):
                argv = isthmus("serve", kind.value, *common, "--config", str(private_file))
                argv += ("--listen", listen)
            elif kind is ServiceKind.EVENTS:
                argv = isthmus("serve", "events", "--listen", listen, "--landing-dir", landing)
            else:
                argv = isthmus("serve", "ads", *common, "--zone", zone["name"])
                argv += ("--config", str(ads_file), "--run-dir", str(run_dir))
                argv += ("--listen", listen)
                if net is not None:
                    argv += ("--advertise-host", net.zone_ip[zone["name"]])
            timeout = 240.0 if kind is ServiceKind.ADS else 60.0
            processes.append(ProcessSpec(service["name"], zone["name"], argv, timeout))
    gateway_listen = runtime["gateway"]["listen"]
    address = f"{gateway_listen['host']}:{gateway_listen['port']}"
    processes.append(
        ProcessSpec(
            "gateway",
            None,
            isthmus("gateway", "--topology", str(topology_file), "--config", str(gateway_file)),
        )
    )
    return LocalPlan(run_dir, tuple(processes), files, address, net)


def runtime_topology(topology: Topology, run_dir: Path, net: NetPlan | None) -> dict[str, Any]:
    """The topology the platform runs with: zone services on their namespace addresses (with
    isolation), the gateway on the caller-facing one, ads discovered from a file."""
    doc: dict[str, Any] = topology.model_dump(mode="json", exclude_none=True)
    if net is not None:
        doc["gateway"]["listen"]["host"] = net.gateway_ip
    for zone in doc["zones"]:
        for service in zone["services"]:
            if net is not None:
                for endpoint in service["endpoints"]:
                    endpoint["host"] = net.zone_ip[zone["name"]]
            if service["kind"] == ServiceKind.ADS.value:
                # The gateway calls the replicas themselves; Serve's proxy (the listed
                # endpoint) stays up for callers without discovery.
                service.pop("endpoints", None)
                service["endpoints_file"] = str(run_dir / f"{service['name']}.endpoints.json")
                service["health_check"] = "serve_healthz"
    return doc


# The local platform compresses a day into minutes on two cores, and its peak (50 visits/s) is a
# small share of them, so its ranking deployment counts a replica as busy much earlier than
# production does: at 0.3 calls in flight (not 2) and 3% of its time ranking (not 50%; the
# demo's peak keeps a replica ~8% busy, its quiet hours ~1%). It gives capacity back after 30 s
# rather than a minute (15 s flapped 2 -> 1 -> 2 on the way down from the peak); production
# keeps AdsConfig's defaults.
LOCAL_AUTOSCALING = {
    "target_ongoing_requests": 0.3,
    "target_busy": 0.03,
    "downscale_delay_s": 30,
    "max_replicas": 3,
}


def gateway_overrides(run_dir: Path, listen: dict[str, Any], metrics_port: int) -> dict[str, Any]:
    """Callers and their token key, and a Prometheus endpoint beside the listener."""
    return {
        "server": {
            "listen": listen,
            "telemetry": {
                "service_name": "isthmus-gateway",
                "metrics": "prometheus",
                "prometheus_listen": {"host": listen["host"], "port": metrics_port},
            },
        },
        "auth": {
            "token_key": {
                "file": str(run_dir / "secrets" / "gateway-token.key"),
                "create_if_missing": True,
            },
            "callers": [{"name": n, "allow": allow} for n, allow in CALLERS.items()],
        },
    }


def _caller_trust(topology: Topology, net: NetPlan | None) -> dict[str, Any]:
    """Private services believe the gateway's x-isthmus-caller: on loopback, or from the
    gateway's end of the private zone's one link when the zone has its own namespace."""
    if net is None:
        return {"trust_header_without_tls": True}
    private = [z.name for z in topology.zones if z.kind is ZoneKind.PRIVATE]
    ends = [link.near_ip for link in net.links if link.far_ns in {net.zone_ns[z] for z in private}]
    return {"trusted_peer_networks": [f"{ip}/32" for ip in ends]}


def public_zones(topology: Topology) -> list[str]:
    return [z.name for z in topology.zones if z.kind is ZoneKind.PUBLIC]


def _yaml(doc: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False)
