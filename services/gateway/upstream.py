"""Upstream clusters at run time: one channel per endpoint, endpoint state, active health
checks, and the per-cluster circuit breaker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.core.server import channel_credentials
from services.gateway.balancer import EndpointState
from services.gateway.config import CircuitBreakerConfig, ClusterConfig, HealthCheckConfig
from services.topology.model import TlsConfig

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),  # the gateway decides about retries, not the channel
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]


class CircuitOpen(Exception):
    """The cluster is at its concurrency limit and its pending queue is full."""


class ClusterRuntime:
    """Endpoints of one cluster with their channels and state."""

    def __init__(
        self, config: ClusterConfig, tls: TlsConfig, breaker: CircuitBreakerConfig
    ) -> None:
        self.config = config
        self.tls = tls
        self.breaker = breaker
        self.endpoints = [EndpointState(e.address) for e in config.endpoints]
        self._channels = {e.address: _channel(e.address, tls) for e in self.endpoints}
        self._slots = asyncio.Semaphore(breaker.max_requests)
        self._max_pending = breaker.max_pending
        self.pending = 0

    def channel(self, address: str) -> grpc.aio.Channel:
        return self._channels[address]

    @property
    def in_flight(self) -> int:
        return sum(e.in_flight for e in self.endpoints)

    def endpoint(self, address: str) -> EndpointState | None:
        return next((e for e in self.endpoints if e.address == address), None)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A circuit-breaker slot; CircuitOpen when even the pending queue is full."""
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
        try:
            yield
        finally:
            self._slots.release()

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


def _channel(address: str, tls: TlsConfig) -> grpc.aio.Channel:
    if tls.enabled:
        return grpc.aio.secure_channel(address, channel_credentials(tls), options=CHANNEL_OPTIONS)
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


class HealthChecker:
    """Checks every endpoint with grpc.health.v1 on an interval; flips `healthy` after the
    configured number of consecutive results."""

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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check_all(self) -> None:
        await asyncio.gather(*(self._check(c, e) for c in self._clusters() for e in c.endpoints))

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            await self.check_all()
            await asyncio.sleep(max(0.0, self._config.interval_s - (time.monotonic() - started)))

    async def _check(self, cluster: ClusterRuntime, endpoint: EndpointState) -> None:
        stub = health_pb2_grpc.HealthStub(cluster.channel(endpoint.address))
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=self._config.timeout_s
            )
            passed = reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError:
            passed = False
        except grpc.aio.UsageError:  # the cluster was retired and closed during this round
            return
        key = (cluster.config.name, endpoint.address)
        streak = self._streaks.get(key, 0)
        # Positive streak counts passes, negative counts failures.
        streak = max(streak, 0) + 1 if passed else min(streak, 0) - 1
        self._streaks[key] = streak
        if endpoint.healthy and streak <= -self._config.unhealthy_threshold:
            endpoint.healthy = False
            log.warning("endpoint %s of %s is unhealthy", endpoint.address, cluster.config.name)
        elif not endpoint.healthy and streak >= self._config.healthy_threshold:
            endpoint.healthy = True
            log.info("endpoint %s of %s is healthy again", endpoint.address, cluster.config.name)
