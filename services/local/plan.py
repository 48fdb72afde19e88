"""What `isthmus up` starts, as data: one process per service, Ray node and gateway instance,
in start order, with the files they read. Pure: the supervisor (supervisor.py) does the I/O.

A public zone with `ray.worker_nodes > 0` runs as a multi-node Ray cluster: a head node
(`ray start --head --block`, no CPUs for replicas: it keeps Serve's controller and proxy) and
N worker nodes (`ray start --block`), each a supervised process like a pod: when a node's
raylet dies its `ray start` exits and the supervisor starts the node again. The zone's ads
process then joins that cluster instead of starting Ray in process.

Addresses come from the topology; with network namespaces every zone's services listen on the
zone's namespace address instead (see netns.py), and the runtime topology the gateway reads
says so. The ads service is discovered, not listed: its replicas' direct-ingress endpoints
come from the file the ads zone process keeps current.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.local.database import READY_MARKER as READY_POSTGRES
from services.local.database import PostgresLayout
from services.local.netns import NetPlan
from services.public.ads.config import AdsConfig, ray_environment
from services.topology.model import RayConfig, ServiceKind, Topology, ZoneKind

# The public zones' compute (Ray nodes and the ads zone processes, which carry the replicas in
# the minimal shape) runs at a lower CPU priority than the door and the private zone. Locally
# every zone shares two cores, and the kernel shares CPU per thread: a replica starting up
# (Ray's dozens of threads importing onnxruntime) starved the single-threaded gateways for a
# few hundred ms, and Rank calls in flight missed their 300 ms deadline even with the bid-only
# fallback (7 of ~1,600 Rank calls in each of two demo runs). In production the zones are
# separate machines; niceness stands in for that isolation (as CPU requests do on Kubernetes).
# The supervisor nices each such process's session too (autogroup: see supervisor.py).
PUBLIC_COMPUTE_NICE = 10

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


READY_LISTENING = "listening on "
READY_RAY = "Ray runtime started"


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process. `kind` is service, gateway, ray-head, ray-worker or database;
    it is ready when its log shows a line starting with (services, gateways) or containing
    (Ray, PostgreSQL) `ready_marker`. `stop_signal` ends it gracefully (PostgreSQL: SIGINT,
    its fast shutdown; SIGTERM would wait for every client to leave)."""

    name: str
    zone: str | None  # None: the gateway
    argv: tuple[str, ...]
    ready_timeout_s: float = 60.0
    kind: str = "service"
    ready_marker: str = READY_LISTENING
    env: tuple[tuple[str, str], ...] = ()
    stop_signal: int = signal.SIGTERM
    nice: int = 0  # CPU priority (0 = normal; higher = yields sooner); inherited by children


@dataclass(frozen=True)
class LocalPlan:
    run_dir: Path
    processes: tuple[ProcessSpec, ...]
    files: dict[Path, str]  # config files to write before starting
    gateway_address: str
    net: NetPlan | None
    postgres: PostgresLayout | None = None  # prepared (database.prepare) before starting


def isthmus(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "services.cli", *args)


def build(
    topology: Topology,
    run_dir: Path,
    net: NetPlan | None,
    metrics_ports: tuple[int, ...] = (50059,),
    ray_ports: dict[str, int] | None = None,
    ray_tmpdir: Path | None = None,
    postgres: PostgresLayout | None = None,
) -> LocalPlan:
    """`metrics_ports`: one Prometheus port per gateway instance; `ray_ports`: the GCS port of
    each multi-node zone's head; `ray_tmpdir`: root of the Ray clusters' session dirs;
    `postgres`: where the private zone's cluster lives (database.locate), needed when the
    topology's private zone runs PostgreSQL (its address is set here)."""
    runtime = runtime_topology(topology, run_dir, net)
    topology_file = run_dir / "topology.yaml"
    private_file = run_dir / "private.yaml"
    ads_file = run_dir / "ads.yaml"
    events_file = run_dir / "events.yaml"
    instances = topology.gateway.instances
    if len(metrics_ports) < instances:
        raise ValueError(f"{instances} gateway instances need as many metrics ports")
    private_dir = run_dir.parent / "private"
    secrets = private_dir / "secrets"
    features = topology.data.features_uri
    landing = topology.data.landing_uri
    postgres = _postgres_layout(topology, net, postgres)
    database_url = f"sqlite:///{private_dir / 'private.db'}" if postgres is None else postgres.url()
    # The pseudonymous ids' check key: the private zone mints with it, the gateway and the
    # event services verify with it (one file; whoever starts first creates it).
    check_key = {"file": str(secrets / "pseudonym-check.key"), "create_if_missing": True}
    files = {
        topology_file: _yaml(runtime),
        private_file: _yaml(
            {
                "database_url": database_url,
                "master_key": {"file": str(secrets / "master.key"), "create_if_missing": True},
                "hmac_key": {"file": str(secrets / "hmac.key"), "create_if_missing": True},
                "pseudonym_check_key": check_key,
                "server": {"caller": _caller_trust(topology, net)},
            }
        ),
        ads_file: _yaml({"features_dir": features, "autoscaling": LOCAL_AUTOSCALING}),
        events_file: _yaml({"pseudonym_check_key": check_key}),
    }
    gateway_listen = runtime["gateway"]["listen"]
    for i in range(instances):
        overrides = gateway_overrides(
            run_dir, gateway_listen, metrics_ports[i], shared=instances > 1
        )
        overrides["pseudonym_check_key"] = check_key
        files[gateway_file(run_dir, i, instances)] = _yaml(overrides)
    processes: list[ProcessSpec] = []
    for zone_spec in topology.zones:
        zone = {"name": zone_spec.name}
        ray_address = None
        if zone_spec.ray is not None and zone_spec.ray.multi_node:
            host = "127.0.0.1" if net is None else net.zone_ip[zone_spec.name]
            port = (ray_ports or {}).get(zone_spec.name, 6379)
            ray_address = f"{host}:{port}"
            tmp = (ray_tmpdir or run_dir / "ray") / zone_spec.name
            processes += ray_nodes(zone_spec.name, zone_spec.ray, host, port, tmp)
        if postgres is not None and zone_spec.kind is ZoneKind.PRIVATE:
            processes.append(
                ProcessSpec(
                    f"{zone_spec.name}-postgres",
                    zone_spec.name,
                    postgres.server_argv(),
                    kind="database",
                    ready_marker=READY_POSTGRES,
                    stop_signal=signal.SIGINT,
                )
            )
        for spec in zone_spec.services:
            if not spec.run_by_isthmus:
                continue  # another team's service: routed to, run by its team
            service = {"name": spec.name}
            kind = spec.kind
            host = spec.endpoints[0].host if net is None else net.zone_ip[zone_spec.name]
            listen = f"{host}:{spec.endpoints[0].port}" if spec.endpoints else f"{host}:0"
            common = ("--topology", str(topology_file))
            if kind in (ServiceKind.PROFILE, ServiceKind.ORDERS):
                argv = isthmus("serve", kind.value, *common, "--config", str(private_file))
                argv += ("--listen", listen)
            elif kind is ServiceKind.EVENTS:
                argv = isthmus("serve", "events", "--config", str(events_file))
                argv += ("--listen", listen, "--landing-dir", landing)
            else:
                argv = isthmus("serve", "ads", *common, "--zone", zone["name"])
                argv += ("--config", str(ads_file), "--run-dir", str(run_dir))
                argv += ("--listen", listen)
                if net is not None:
                    argv += ("--advertise-host", net.zone_ip[zone["name"]])
                if ray_address is not None:
                    argv += ("--ray-address", ray_address)
            timeout = 240.0 if kind is ServiceKind.ADS else 60.0
            nice = PUBLIC_COMPUTE_NICE if kind is ServiceKind.ADS else 0
            processes.append(ProcessSpec(service["name"], zone["name"], argv, timeout, nice=nice))
    address = f"{gateway_listen['host']}:{gateway_listen['port']}"
    for i in range(instances):
        config = gateway_file(run_dir, i, instances)
        name = "gateway" if instances == 1 else f"gateway-{i + 1}"
        argv = isthmus("gateway", "--topology", str(topology_file), "--config", str(config))
        processes.append(ProcessSpec(name, None, argv, kind="gateway"))
    return LocalPlan(run_dir, tuple(processes), files, address, net, postgres)


def _postgres_layout(
    topology: Topology, net: NetPlan | None, located: PostgresLayout | None
) -> PostgresLayout | None:
    """The private zone's PostgreSQL on the zone's own address, or None for SQLite."""
    zone = next(z for z in topology.zones if z.kind is ZoneKind.PRIVATE)
    if zone.database is None or zone.database.engine == "sqlite":
        return None
    if located is None:
        raise ValueError(f"zone {zone.name} runs PostgreSQL: give its layout (database.locate)")
    host = "127.0.0.1" if net is None else net.zone_ip[zone.name]
    return dataclasses.replace(located, host=host, port=zone.database.port)


def gateway_file(run_dir: Path, index: int, instances: int) -> Path:
    """Each gateway instance has its own overrides (its metrics port differs)."""
    return run_dir / ("gateway.yaml" if instances == 1 else f"gateway-{index + 1}.yaml")


def ray_nodes(zone: str, ray: RayConfig, host: str, port: int, tmpdir: Path) -> list[ProcessSpec]:
    """A head node without CPUs for replicas (Serve's controller and proxy live there) and the
    worker nodes, started one after the other (Ray names each node's sockets by counting the
    files already there, so nodes started at once race for one name)."""
    ray_cli = str(Path(sys.executable).with_name("ray"))
    common = (
        "--block",
        f"--node-ip-address={host}",
        "--dashboard-agent-listen-port=0",
        f"--object-store-memory={ray.object_store_memory_bytes}",
        "--disable-usage-stats",
    )
    # Serve's controller, proxy and replicas read these at import: they must be on the nodes.
    env = tuple(sorted(ray_environment(AdsConfig(), tmpdir, local=True).items()))
    head = ProcessSpec(
        f"{zone}-ray-head",
        zone,
        (
            ray_cli,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=0",
            "--include-dashboard=false",
            f"--temp-dir={tmpdir}",
            *common,
        ),
        ready_timeout_s=90.0,
        kind="ray-head",
        ready_marker=READY_RAY,
        env=env,
        nice=PUBLIC_COMPUTE_NICE,
    )
    workers = [
        ProcessSpec(
            f"{zone}-ray-worker-{i}",
            zone,
            (
                ray_cli,
                "start",
                f"--address={host}:{port}",
                f"--num-cpus={ray.worker_node_cpus}",
                *common,
            ),
            ready_timeout_s=90.0,
            kind="ray-worker",
            ready_marker=READY_RAY,
            env=env,
            nice=PUBLIC_COMPUTE_NICE,
        )
        for i in range(1, ray.worker_nodes + 1)
    ]
    return [head, *workers]


def runtime_topology(topology: Topology, run_dir: Path, net: NetPlan | None) -> dict[str, Any]:
    """The topology the platform runs with: zone services on their namespace addresses (with
    isolation), the gateway on the caller-facing one, ads discovered from a file."""
    doc: dict[str, Any] = topology.model_dump(mode="json", exclude_none=True)
    if net is not None:
        doc["gateway"]["listen"]["host"] = net.gateway_ip
    for zone in doc["zones"]:
        for service in zone["services"]:
            if net is not None and service["kind"] != ServiceKind.EXTERNAL.value:
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


def gateway_overrides(
    run_dir: Path, listen: dict[str, Any], metrics_port: int, shared: bool = False
) -> dict[str, Any]:
    """Callers and their token key, and a Prometheus endpoint beside the listener; `shared`:
    several instances bind the listener together (SO_REUSEPORT)."""
    return {
        "server": {
            "listen": listen,
            "reuse_port": shared,
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


def plan_to_json(plan: LocalPlan) -> str:
    """The plan as the supervisor daemon reads it (`isthmus supervise --run-dir`)."""
    import json

    return json.dumps(
        {
            "run_dir": str(plan.run_dir),
            "processes": [dataclasses.asdict(p) for p in plan.processes],
            "files": {str(path): text for path, text in plan.files.items()},
            "gateway_address": plan.gateway_address,
            "net": None if plan.net is None else dataclasses.asdict(plan.net),
            "postgres": None
            if plan.postgres is None
            else {k: str(v) for k, v in dataclasses.asdict(plan.postgres).items()},
        },
        indent=1,
    )


def plan_from_json(text: str) -> LocalPlan:
    import json

    from services.local.netns import Link

    raw = json.loads(text)
    processes = tuple(
        ProcessSpec(**{**p, "argv": tuple(p["argv"]), "env": tuple(map(tuple, p["env"]))})
        for p in raw["processes"]
    )
    net = raw["net"]
    if net is not None:
        net = NetPlan(
            **{
                **net,
                "namespaces": tuple(net["namespaces"]),
                "links": tuple(Link(**link) for link in net["links"]),
            }
        )
    files = {Path(path): text for path, text in raw["files"].items()}
    pg = raw.get("postgres")
    postgres = None
    if pg is not None:
        postgres = PostgresLayout(
            Path(pg["root"]),
            pg["host"],
            int(pg["port"]),
            Path(pg["bin_dir"]),
            Path(pg["secrets_dir"]),
        )
    return LocalPlan(Path(raw["run_dir"]), processes, files, raw["gateway_address"], net, postgres)
