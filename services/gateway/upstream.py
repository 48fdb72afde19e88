"""Upstream clusters at run time: one channel per endpoint, endpoint state, active health
checks, endpoint discovery from a file, and the per-cluster circuit breaker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.contract.descriptors import MethodInfo
from services.core.server import channel_credentials
from services.gateway.balancer import EndpointState
from services.gateway.config import (
    SERVE_HEALTHZ,
    ClusterConfig,
    ClusterSettings,
    ConnectionConfig,
    DiscoveryConfig,
    HealthCheckConfig,
    HealthCheckKind,
)
from services.gateway.discovery import FileEndpointSource, diff
from services.topology.model import TlsConfig

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),  # the gateway decides about retries, not the channel
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]


def channel_options(connection: ConnectionConfig) -> list[tuple[str, int]]:
    """The channel arguments for one upstream endpoint. gRPC core takes its minimum
    reconnect back-off as the deadline of one connection attempt, so that argument is the
    connect timeout; the initial and maximum back-off bound the wait between attempts."""
    return [
        *CHANNEL_OPTIONS,
        ("grpc.min_reconnect_backoff_ms", round(connection.connect_timeout_s * 1000)),
        ("grpc.initial_reconnect_backoff_ms", round(connection.backoff_initial_s * 1000)),
        ("grpc.max_reconnect_backoff_ms", round(connection.backoff_max_s * 1000)),
    ]


class CircuitOpen(Exception):
    """The cluster is at its concurrency limit and its pending queue is full."""


class ClusterRuntime:
    """Endpoints of one cluster with their channels and state. Static clusters keep their
    endpoints for life; file-discovered ones gain endpoints (unhealthy until a check passes,
    or at once where the cluster has no active checks) and lose them by draining (no new
    picks; removed once no call is in flight)."""

    def __init__(self, config: ClusterConfig, tls: TlsConfig, settings: ClusterSettings) -> None:
        self.config = config
        self.tls = tls
        self.settings = settings
        breaker = settings.circuit_breaker
        self.endpoints = [EndpointState(e.address) for e in config.endpoints]
        self._options = channel_options(settings.connection)
        self._channels = {e.address: self._dial(e.address) for e in self.endpoints}
        self._slots = asyncio.Semaphore(breaker.max_requests)
        self._max_pending = breaker.max_pending
        self.pending = 0
        self.labels = {"cluster": config.name}  # metric attributes
        self._attempt_labels: dict[str, dict[str, str]] = {}
        self._callables: dict[tuple[str, str], Any] = {}
        self.source = (
            FileEndpointSource(config.endpoints_file, config.name)
            if config.endpoints_file is not None
            else None
        )

    def attempt_labels(self, method_path: str) -> dict[str, str]:
        """Metric attributes of one attempt (cluster and method), built once per method."""
        labels = self._attempt_labels.get(method_path)
        if labels is None:
            labels = self._attempt_labels[method_path] = {**self.labels, "rpc_method": method_path}
        return labels

    @property
    def actively_checked(self) -> bool:
        return self.config.health_check != "none"

    def channel(self, address: str) -> grpc.aio.Channel:
        return self._channels[address]

    def _dial(self, address: str) -> grpc.aio.Channel:
        if self.tls.enabled:
            credentials = channel_credentials(self.tls)
            return grpc.aio.secure_channel(address, credentials, options=self._options)
        return grpc.aio.insecure_channel(address, options=self._options)

    @property
    def in_flight(self) -> int:
        return sum(e.in_flight for e in self.endpoints)

    def endpoint(self, address: str) -> EndpointState | None:
        return next((e for e in self.endpoints if e.address == address), None)

    def apply(self, addresses: list[str]) -> list[EndpointState]:
        """Make `addresses` the cluster's endpoint set; returns the endpoints that are new
        (they stay unhealthy, taking no traffic, until a health check passes)."""
        current = [e.address for e in self.endpoints if not e.removed]
        add, remove = diff(current, addresses)
        added: list[EndpointState] = []
        for address in add:
            endpoint = self.endpoint(address)
            if endpoint is not None:  # came back while draining: keep its state and channel
                endpoint.removed = False
                continue
            endpoint = EndpointState(address, healthy=not self.actively_checked)
            self._channels[address] = self._dial(address)
            self.endpoints.append(endpoint)
            added.append(endpoint)
        for address in remove:
            endpoint = self.endpoint(address)
            if endpoint is not None:
                endpoint.removed = True
        if add or remove:
            log.info(
                "cluster %s: +%d -%d endpoint(s) (%s)",
                self.config.name,
                len(add),
                len(remove),
                ", ".join([*(f"+{a}" for a in add), *(f"-{a}" for a in remove)]),
            )
        return added

    def seed(self, previous: ClusterRuntime | None) -> None:
        """Read the endpoints file now, keeping what `previous` (the runtime this one replaces
        on a reload) knew about each endpoint's health, so a rebuilt cluster does not start
        empty or all-unhealthy."""
        addresses = self.source.poll() if self.source is not None else None
        if addresses is None:
            return
        self.apply(addresses)
        if previous is None or not (self.actively_checked and previous.actively_checked):
            return  # health from another kind of checking (or none) says nothing here
        for endpoint in self.endpoints:
            old = previous.endpoint(endpoint.address)
            if old is not None and not old.removed:
                endpoint.healthy = old.healthy

    async def reap(self) -> None:
        """Forget removed endpoints that have no call in flight, and close their channels."""
        done = [e for e in self.endpoints if e.removed and not e.in_flight]
        if not done:
            return
        # Rebind rather than mutate: a pick or health round iterating the old list is unharmed.
        self.endpoints = [e for e in self.endpoints if e not in done]
        gone = {e.address for e in done}
        self._callables = {k: v for k, v in self._callables.items() if k[0] not in gone}
        for endpoint in done:
            await self._channels.pop(endpoint.address).close()

    def callable(self, address: str, method: MethodInfo) -> Any:
        """The channel's multicallable for `method` (made once per endpoint and method)."""
        key = (address, method.path)
        found = self._callables.get(key)
        if found is None:
            channel = self._channels[address]
            if method.client_streaming:
                make = channel.stream_stream if method.server_streaming else channel.stream_unary
            else:
                make = channel.unary_stream if method.server_streaming else channel.unary_unary
            found = self._callables[key] = make(method.path)
        return found

    async def acquire(self) -> None:
        """A circuit-breaker slot (give it back with `release`); CircuitOpen when even the
        pending queue is full."""
        if self._slots.locked():
            if self.pending >= self._max_pending:
                raise CircuitOpen(f"cluster {self.config.name} is at its limits")
            self.pending += 1
            try:
                await self._slots.acquire()
            finally:
                self.pending -= 1
        else:
            await self._slots.acquire()

    def release(self) -> None:
        self._slots.release()

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


class HealthChecker:
    """Checks every endpoint on an interval (grpc.health.v1 Check, or Ray Serve's Healthz, per
    cluster); flips `healthy` after the configured number of consecutive results."""

    def __init__(
        self, clusters: Callable[[], list[ClusterRuntime]], config: HealthCheckConfig
    ) -> None:
        self._clusters = clusters  # read on every round: a reload swaps the clusters
        self._config = config
        self._streaks: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="gateway-health-checks")

    async def stop(self) -> None:
        await _cancel(self._task)

    async def check_all(self) -> None:
        """Check every endpoint of every actively checked cluster now."""
        await asyncio.gather(
            *(
                self._check(c, e)
                for c in self._clusters()
                if c.actively_checked
                for e in c.endpoints
                if not e.removed
            )
        )

    async def check(self, cluster: ClusterRuntime, endpoints: list[EndpointState]) -> None:
        """Check `endpoints` now (new discovered ones, so they need not wait for a round)."""
        if cluster.actively_checked:
            await asyncio.gather(*(self._check(cluster, e) for e in endpoints))

    async def _loop(self) -> None:
        """Each cluster on its own interval (its health settings, else the gateway's)."""
        due: dict[str, float] = {}
        while True:
            now = time.monotonic()
            rounds: list[Any] = []
            checked = [c for c in self._clusters() if c.actively_checked]
            # A cluster gone or no longer checked (a reload) leaves no stale time behind.
            due = {c.config.name: due[c.config.name] for c in checked if c.config.name in due}
            for cluster in checked:
                name = cluster.config.name
                if now < due.get(name, 0.0):
                    continue
                due[name] = now + cluster.settings.health.interval_s
                rounds.extend(self._check(cluster, e) for e in cluster.endpoints if not e.removed)
            await asyncio.gather(*rounds)
            upcoming = list(due.values()) or [now + self._config.interval_s]
            await asyncio.sleep(max(0.01, min(upcoming) - time.monotonic()))

    async def _check(self, cluster: ClusterRuntime, endpoint: EndpointState) -> None:
        health = cluster.settings.health
        try:
            channel = cluster.channel(endpoint.address)
            passed = await _probe(channel, cluster.config.health_check, health.timeout_s)
        except (grpc.aio.UsageError, KeyError):  # retired or reaped during this round
            return
        key = (cluster.config.name, endpoint.address)
        if endpoint.removed:
            self._streaks.pop(key, None)
            return
        streak = self._streaks.get(key, 0)
        # Positive streak counts passes, negative counts failures.
        streak = max(streak, 0) + 1 if passed else min(streak, 0) - 1
        self._streaks[key] = streak
        if endpoint.healthy and streak <= -health.unhealthy_threshold:
            endpoint.healthy = False
            log.warning("endpoint %s of %s is unhealthy", endpoint.address, cluster.config.name)
        elif not endpoint.healthy and streak >= health.healthy_threshold:
            endpoint.healthy = True
            log.info("endpoint %s of %s is healthy", endpoint.address, cluster.config.name)


async def _probe(channel: grpc.aio.Channel, kind: HealthCheckKind, timeout_s: float) -> bool:
    """One health check. serve_healthz: Ray Serve answers OK when healthy and UNAVAILABLE
    ("DRAINING"/"UNHEALTHY") otherwise; any error counts as unhealthy."""
    try:
        if kind == "serve_healthz":
            await channel.unary_unary(SERVE_HEALTHZ)(b"", timeout=timeout_s)
            return True
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.aio.AioRpcError:
        return False


class DiscoveryWatcher:
    """Polls the endpoints file of every file-discovered cluster, applies changes, checks new
    endpoints at once, and forgets drained ones."""

    def __init__(
        self,
        clusters: Callable[[], list[ClusterRuntime]],
        health: HealthChecker,
        config: DiscoveryConfig,
    ) -> None:
        self._clusters = clusters
        self._health = health
        self._config = config
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0  # rounds finished: whoever waits for "a few polls" counts them

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="gateway-discovery")

    async def stop(self) -> None:
        await _cancel(self._task)

    async def poll_all(self) -> None:
        for cluster in self._clusters():
            if cluster.source is None:
                continue
            addresses = cluster.source.poll()
            if addresses is not None:
                added = cluster.apply(addresses)
                if added:
                    await self._health.check(cluster, added)
            await cluster.reap()
        self.rounds += 1

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._config.poll_interval_s)
            try:
                await self.poll_all()
            except Exception:  # never let one bad round stop discovery for good
                log.exception("endpoint discovery round failed")


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
