"""The public zone's ranking process: joins (or starts) the zone's Ray cluster, runs the Serve
application with gRPC ingress, and publishes where its replicas listen.

Ingress choice (measured, see bench/results/ads.json and ../shared/DESIGN.md): the gateway
calls each replica's direct-ingress gRPC port itself and balances across them; Serve's proxy
stays up for callers without discovery. Replicas come and go with autoscaling, so this process
polls the Serve controller for the application's direct-ingress targets and rewrites the
endpoints file the gateway watches (temp file + rename, a generation that only increases).
On SIGTERM it publishes an empty set first, so the gateway moves to the next cluster before
the replicas stop, then shuts Serve and Ray down.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.durable import write_synced
from services.core.server import free_port
from services.public.ads.config import AdsConfig, ray_environment
from services.public.ads.deployment import DEPLOYMENT, SERVICER, build_app
from services.topology.model import RayConfig

log = logging.getLogger(__name__)
POLL_S = 0.5


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    id: str


def grpc_targets(target_groups: list[Any], app_name: str) -> list[Target]:
    """The application's direct-ingress gRPC targets from the controller's target groups (the
    proxy's own targets, listed while no replica runs, are left out)."""
    found: list[Target] = []
    for group in target_groups:
        protocol = getattr(group.protocol, "name", str(group.protocol))
        if protocol != "GRPC" or group.app_name != app_name:
            continue
        for target in group.targets:
            if target.name.startswith("SERVE_REPLICA::"):
                found.append(Target(target.ip, int(target.port), target.name.split("::", 1)[1]))
    return sorted(found, key=lambda t: (t.host, t.port))


class EndpointsFile:
    """Writes the discovery file only when the set changes, with a rising generation."""

    def __init__(self, path: Path, service: str) -> None:
        self.path = path
        self.service = service
        self.generation = int(time.time() * 1000)  # rises across restarts too
        self._last: list[Target] | None = None

    def publish(self, targets: list[Target]) -> bool:
        if targets == self._last:
            return False
        self.generation += 1
        body = {
            "service": self.service,
            "generation": self.generation,
            "updated_unix_s": time.time(),
            "endpoints": [{"host": t.host, "port": t.port, "id": t.id} for t in targets],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        write_synced(tmp, json.dumps(body, indent=1).encode())
        os.replace(tmp, self.path)
        self._last = targets
        return True


def ray_tmpdir(run_dir: Path) -> Path:
    """Ray's session directory holds Unix sockets, whose paths may not exceed 107 bytes, so it
    lives under a short /tmp name derived from the run directory rather than inside it."""
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:10]
    path = Path(tempfile.gettempdir()) / f"isthmus-ray-{digest}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


class AdsZone:
    """Start, watch and stop the ranking application of one public zone."""

    def __init__(
        self,
        config: AdsConfig,
        ray: RayConfig,
        grpc_port: int,
        endpoints_file: Path,
        service_name: str,
        run_dir: Path,
    ) -> None:
        self.config = config.resolved()
        self.ray = ray
        self.grpc_port = grpc_port or free_port()
        self.endpoints = EndpointsFile(endpoints_file, service_name)
        self.status_file = endpoints_file.with_name(f"{service_name}.status.json")
        self.run_dir = run_dir
        self._stop = threading.Event()
        # A local cluster's replicas listen on every interface of this host (or of the zone's
        # namespace): callers on the host reach them over loopback, the gateway in its own
        # namespace at the zone's address.
        self.advertise_host: str | None = "127.0.0.1" if ray.address == "local" else None
        # Joined a cluster `isthmus up` started on this machine (its nodes run with the local
        # environment: no token auth, short temp dir) rather than a remote one.
        self.launched_cluster = False

    def start(self) -> None:
        import ray
        from ray import serve
        from ray.serve.config import HTTPOptions, gRPCOptions

        local = self.ray.address == "local"
        tmpdir = ray_tmpdir(self.run_dir)
        os.environ.update(ray_environment(self.config, tmpdir, local or self.launched_cluster))
        options: dict[str, Any] = {"log_to_driver": False, "namespace": "isthmus"}
        if local:
            options.update(
                include_dashboard=False,
                num_cpus=self.ray.num_cpus,
                object_store_memory=self.ray.object_store_memory_bytes,
                _node_ip_address="127.0.0.1",
            )
            ray.init(**options)
        else:
            ray.init(address=self.ray.address, **options)
        serve.start(
            # One proxy, on the head: every node of a local cluster shares the zone's address,
            # so a proxy per node would fight over the gRPC port. The gateway calls the
            # replicas' direct-ingress ports, not the proxy.
            proxy_location="HeadOnly",
            http_options=HTTPOptions(host="127.0.0.1", port=self.config.http_port or free_port()),
            grpc_options=gRPCOptions(port=self.grpc_port, grpc_servicer_functions=[SERVICER]),
        )
        serve.run(
            build_app(self.config),
            name=self.config.app_name,
            route_prefix=f"/{self.config.app_name}",
        )
        self.refresh_endpoints()

    def refresh_endpoints(self) -> list[Target]:
        import ray
        from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

        controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        pending: Any = controller.get_target_groups.remote(self.config.app_name)
        groups: list[Any] = ray.get(pending, timeout=10)
        targets = grpc_targets(groups, self.config.app_name)
        if self.advertise_host is not None:
            targets = [Target(self.advertise_host, t.port, t.id) for t in targets]
        if self.endpoints.publish(targets):
            log.info("replica endpoints: %s", [f"{t.host}:{t.port}" for t in targets])
        return targets

    def replica_states(self) -> tuple[dict[str, int], str]:
        """Replicas by state, and the deployment's status (HEALTHY, UPSCALING, ...)."""
        from ray import serve

        app = serve.status().applications.get(self.config.app_name)
        if app is None or DEPLOYMENT not in app.deployments:
            return {}, "NOT_DEPLOYED"
        deployment = app.deployments[DEPLOYMENT]
        states = deployment.replica_states
        status = str(getattr(deployment.status, "value", deployment.status))
        return {str(getattr(k, "value", k)): int(v) for k, v in states.items()}, status

    def watch(self) -> None:
        """Keep the endpoints and status files current until stop() is called."""
        while not self._stop.wait(POLL_S):
            try:
                targets = self.refresh_endpoints()
                replicas, deployment_status = self.replica_states()
                status = {
                    "time_unix_s": time.time(),
                    "replicas": replicas,
                    "deployment_status": deployment_status,
                    "endpoints": len(targets),
                    "grpc_proxy": f"127.0.0.1:{self.grpc_port}",
                }
                tmp = self.status_file.with_name(f".{self.status_file.name}.tmp")
                tmp.write_text(json.dumps(status))
                os.replace(tmp, self.status_file)
            except Exception:
                log.exception("could not refresh replica endpoints; keeping the last set")

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        import ray
        from ray import serve

        self.endpoints.publish([])  # the gateway stops picking replicas before they go
        time.sleep(min(1.0, self.config.drain_period_s))
        try:
            serve.shutdown()  # type: ignore[no-untyped-call]
        finally:
            ray.shutdown()


def run(zone: AdsZone) -> int:
    """Run until SIGTERM/SIGINT; prints `listening on` (for launchers) once serving."""
    zone.start()
    # After ray.init, which installs handlers of its own that would end the process at once.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: zone.stop())
    print(f"listening on {zone.advertise_host or '127.0.0.1'}:{zone.grpc_port}", flush=True)
    print(f"replica endpoints in {zone.endpoints.path}", flush=True)
    try:
        zone.watch()
    finally:
        zone.shutdown()
    return 0
