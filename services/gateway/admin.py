"""GatewayAdminService, served by the gateway itself (never forwarded)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from isthmus.gateway.v1 import gateway_admin_pb2 as pb
from isthmus.gateway.v1 import gateway_admin_pb2_grpc
from services.core.errors import InvalidArgument, NotFound
from services.gateway import fallbacks
from services.gateway.balancer import EndpointState
from services.gateway.config import GatewayConfig, RouteConfig
from services.gateway.proxy import Gateway
from services.gateway.upstream import ClusterRuntime
from services.topology.model import ZoneKind

log = logging.getLogger(__name__)

ADMIN_SERVICE = "isthmus.gateway.v1.GatewayAdminService"
_PATH = f"/{ADMIN_SERVICE}/"


def config_version(config: GatewayConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


class AdminServicer(gateway_admin_pb2_grpc.GatewayAdminServiceServicer):
    def __init__(self, gateway: Gateway, load_config: Callable[[], GatewayConfig]) -> None:
        self._gateway = gateway
        self._load_config = load_config
        self._loaded_at = time.time()

    async def ListRoutes(
        self, request: pb.ListRoutesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRoutesResponse:
        self._gateway.admission.admit(context, _PATH + "ListRoutes")
        config = self._gateway.snapshot.config
        return pb.ListRoutesResponse(
            routes=[_route(r) for r in config.routes], config_version=config_version(config)
        )

    async def GetClusterHealth(
        self, request: pb.GetClusterHealthRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetClusterHealthResponse:
        self._gateway.admission.admit(context, _PATH + "GetClusterHealth")
        clusters = self._gateway.snapshot.clusters
        if request.cluster and request.cluster not in clusters:
            raise NotFound(f"no cluster {request.cluster}")
        names = [request.cluster] if request.cluster else sorted(clusters)
        return pb.GetClusterHealthResponse(clusters=[_cluster(clusters[n]) for n in names])

    async def DrainEndpoint(
        self, request: pb.DrainEndpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.DrainEndpointResponse:
        self._gateway.admission.admit(context, _PATH + "DrainEndpoint")
        cluster = self._gateway.snapshot.clusters.get(request.cluster)
        if cluster is None:
            raise NotFound(f"no cluster {request.cluster}")
        endpoint = cluster.endpoint(request.address)
        if endpoint is None:
            raise NotFound(f"no endpoint {request.address} in cluster {request.cluster}")
        endpoint.drained = not request.undrain
        deadline = time.monotonic() + request.wait_timeout.ToTimedelta().total_seconds()
        # Polled: in-flight counts are plain integers shared with the proxy, not events.
        while endpoint.drained and endpoint.in_flight and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        return pb.DrainEndpointResponse(
            endpoint=_endpoint(endpoint), in_flight_remaining=endpoint.in_flight
        )

    async def ReloadConfig(
        self, request: pb.ReloadConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReloadConfigResponse:
        self._gateway.admission.admit(context, _PATH + "ReloadConfig")
        try:
            changes, applied = self.reload(dry_run=request.dry_run)
        except ValueError as exc:
            raise InvalidArgument.field("config", str(exc)) from exc
        stamp = timestamp_pb2.Timestamp()
        stamp.FromNanoseconds(int(self._loaded_at * 1e9))
        return pb.ReloadConfigResponse(
            config_version=config_version(self._gateway.snapshot.config),
            applied=applied,
            changes=changes,
            load_time=stamp,
        )

    def reload(self, dry_run: bool = False) -> tuple[list[str], bool]:
        """Read the config source again and swap it in when it changed (not on `dry_run`);
        ReloadConfig and SIGHUP both come here. Returns (changes, applied); raises ValueError
        for a config that is refused, leaving the one in force. Runs on the event loop."""
        new = self._load_config()
        # Read the fallbacks' inputs (the rules file) and the teams' descriptor sets now: a
        # file broken since the config was validated is refused like a broken config, and
        # new contents count as a change.
        answers = fallbacks.prepare_fallbacks(new)
        contract = self._gateway.contract_for(new)
        if dry_run:
            from services.gateway.routing import build_route_table

            build_route_table(new, contract.methods)
        old = self._gateway.snapshot
        changes = _changes(old.config, new) + fallbacks.changed(old.fallbacks, answers)
        if contract.digest != old.contract.digest:
            changes.append("descriptor sets changed")
        if dry_run or not changes:
            return changes, False
        retired = self._gateway.reload(new, answers, contract)
        asyncio.get_running_loop().create_task(_close_when_idle(retired))
        self._loaded_at = time.time()
        return changes, True

    def reload_on_signal(self) -> None:
        """SIGHUP: reload from the config file, as `nginx -s reload` does; the outcome is
        logged (the config holds no secrets: key files are named, public keys only)."""
        try:
            changes, applied = self.reload()
        except ValueError as exc:
            log.error("SIGHUP: configuration refused, the one in force stays: %s", exc)
            return
        version = config_version(self._gateway.snapshot.config)
        if applied:
            log.info("SIGHUP: configuration %s reloaded (%s)", version, "; ".join(changes))
        else:
            log.info("SIGHUP: configuration %s reloaded (no change)", version)


async def _close_when_idle(clusters: list[ClusterRuntime], limit_s: float = 60.0) -> None:
    """Retired clusters keep serving the calls that started on them, then close."""
    deadline = time.monotonic() + limit_s
    while any(c.in_flight for c in clusters) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for cluster in clusters:
        await cluster.close()


def _changes(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    out: list[str] = []
    for kind, before, after in (
        ("route", {r.name: r for r in old.routes}, {r.name: r for r in new.routes}),
        ("cluster", {c.name: c for c in old.clusters}, {c.name: c for c in new.clusters}),
    ):
        out += [f"{kind} {n} added" for n in sorted(after.keys() - before.keys())]
        out += [f"{kind} {n} removed" for n in sorted(before.keys() - after.keys())]
        out += [
            f"{kind} {n} changed"
            for n in sorted(before.keys() & after.keys())
            if before[n] != after[n]
        ]
    if [r.name for r in old.routes] != [r.name for r in new.routes] and not out:
        out.append("route order changed")
    if old.model_dump(exclude={"routes", "clusters"}) != new.model_dump(
        exclude={"routes", "clusters"}
    ):
        out.append("policies changed")
    return out


def _route(route: RouteConfig) -> pb.Route:
    match = route.match
    return pb.Route(
        name=route.name,
        match=pb.RouteMatch(method=match.method, service=match.service, prefix=match.prefix),
        clusters=route.clusters,
        per_try_timeout=_duration(route.per_try_timeout_s),
        max_attempts=route.max_attempts,
        degraded_fallback=route.fallback != "none",
        timeout=_duration(route.timeout_s),
        retry_on=route.retry_on,
    )


def _duration(seconds: float | None) -> duration_pb2.Duration | None:
    if seconds is None:
        return None
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration


def _cluster(cluster: ClusterRuntime) -> pb.ClusterHealth:
    kind = (
        pb.ZONE_KIND_PRIVATE
        if cluster.config.zone_kind is ZoneKind.PRIVATE
        else pb.ZONE_KIND_PUBLIC
    )
    return pb.ClusterHealth(
        name=cluster.config.name,
        zone=cluster.config.zone,
        zone_kind=kind,
        endpoints=[_endpoint(e) for e in cluster.endpoints],
        in_flight=cluster.in_flight,
        pending=cluster.pending,
    )


def _endpoint(endpoint: EndpointState) -> pb.EndpointHealth:
    now = time.monotonic()
    if endpoint.drained:
        state = pb.ENDPOINT_STATE_DRAINED
    elif endpoint.ejected(now):
        state = pb.ENDPOINT_STATE_EJECTED
    elif not endpoint.healthy:
        state = pb.ENDPOINT_STATE_UNHEALTHY
    else:
        state = pb.ENDPOINT_STATE_HEALTHY
    health = pb.EndpointHealth(
        address=endpoint.address,
        state=state,
        in_flight=endpoint.in_flight,
        consecutive_failures=endpoint.consecutive_failures,
        ejection_count=endpoint.ejection_count,
    )
    if endpoint.ejected(now):
        health.ejected_until.FromNanoseconds(
            int((time.time() + endpoint.ejected_until - now) * 1e9)
        )
    return health
