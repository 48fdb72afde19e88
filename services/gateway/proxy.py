"""The transparent proxy: bytes in, bytes out; metadata, trailers, status, details, deadlines
and cancellation pass through. Decisions come from routing.py and balancer.py."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from isthmus.ads.v1 import ads_pb2
from services.contract.descriptors import MethodInfo
from services.core.errors import DeadlineExceeded, Unavailable
from services.core.telemetry import Telemetry
from services.gateway.admission import Admission
from services.gateway.balancer import RetryBudget, pick, record_outcome
from services.gateway.config import GatewayConfig, Outcome, RouteConfig
from services.gateway.degraded import bid_only_ranking
from services.gateway.routing import RouteTable, build_route_table
from services.gateway.upstream import CircuitOpen, ClusterRuntime

Metadata = Sequence[tuple[str, str | bytes]]
# Not forwarded upstream: transport headers gRPC sets itself, the caller's credentials, and
# headers the gateway owns (caller identity, trace context).
_DROP = frozenset(
    {
        "user-agent",
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        "content-type",
        "te",
        "authorization",
        "x-isthmus-caller",
        "traceparent",
        "tracestate",
    }
)
RETRY_ON = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
_ENDPOINT_FAILURE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass
class Reply:
    """How one attempt ended."""

    code: grpc.StatusCode
    details: str = ""
    initial: Metadata = ()
    trailing: Metadata = ()
    message: bytes | None = None
    messages_sent: int = 0  # streaming: responses already forwarded (no retry after the first)


@dataclass
class Snapshot:
    """Routing state a call keeps for its whole life (a reload swaps in a new one)."""

    config: GatewayConfig
    table: RouteTable
    clusters: dict[str, ClusterRuntime]
    in_flight: int = field(default=0)


class Gateway:
    """Holds the configuration in force and runs calls through it."""

    def __init__(
        self, config: GatewayConfig, methods: dict[str, MethodInfo], telemetry: Telemetry
    ) -> None:
        self.methods = methods
        self.telemetry = telemetry
        self.admission = Admission(config.auth)
        self.snapshot = self._snapshot(config, {})
        self.budget = RetryBudget(config.retry_budget)
        self.rng = random.Random()  # noqa: S311 (load balancing, not security)
        meter = telemetry.meter
        self.counters = {
            name: meter.create_counter(f"isthmus.gateway.{name}", unit="{call}")
            for name in ("attempts", "retries", "failovers", "ejections", "degraded")
        }

    def _snapshot(self, config: GatewayConfig, old: dict[str, ClusterRuntime]) -> Snapshot:
        table = build_route_table(config, self.methods)
        clusters = {}
        for cluster in config.clusters:
            previous = old.get(cluster.name)
            keep = (
                previous is not None
                and previous.config == cluster
                and previous.tls == config.upstream_tls
                and previous.breaker == config.circuit_breaker
            )
            clusters[cluster.name] = (
                previous
                if keep and previous is not None
                else ClusterRuntime(cluster, config.upstream_tls, config.circuit_breaker)
            )
        return Snapshot(config, table, clusters)

    def reload(self, config: GatewayConfig) -> list[ClusterRuntime]:
        """Swap in `config` (validated first); returns clusters no longer used, for the caller
        to close once their in-flight calls are done."""
        old = self.snapshot
        self.snapshot = self._snapshot(config, old.clusters)
        self.admission = Admission(config.auth)
        kept = set(map(id, self.snapshot.clusters.values()))
        return [c for c in old.clusters.values() if id(c) not in kept]

    # ---- unary request (unary or server-streaming response): retries and failover ---------
    async def unary_request(
        self,
        method: MethodInfo,
        request: bytes,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[bytes]:
        caller = self.admission.admit(context, method.path)
        snap = self.snapshot
        route = self._route(snap, method)
        clusters = [snap.clusters[c.name] for c in snap.table.eligible_clusters(route, method)]
        if not clusters:
            raise Unavailable(f"no cluster may serve {method.path}")
        deadline = _deadline(context)
        attempts = snap.table.attempts_per_cluster(route, method)
        last: Reply | None = None
        tried_any = False
        self.budget.active += 1
        snap.in_flight += 1
        try:
            for index, cluster in enumerate(clusters):
                if index and tried_any:
                    if attempts == 1:
                        break  # not retry-safe: a second cluster would be a retry
                    self.counters["failovers"].add(1, {"route": route.name})
                exclude: set[str] = set()
                for attempt in range(attempts):
                    endpoint = pick(cluster.endpoints, time.monotonic(), self.rng, exclude)
                    if endpoint is None:
                        break
                    if attempt or (index and tried_any):
                        if not self.budget.may_retry():
                            break
                        self.counters["retries"].add(1, {"route": route.name})
                        await asyncio.sleep(self.budget.backoff_s(attempt + 1, self.rng))
                        # Pick again: endpoints may have come or gone during the back-off.
                        endpoint = pick(cluster.endpoints, time.monotonic(), self.rng, exclude)
                        if endpoint is None:
                            break
                    exclude.add(endpoint.address)
                    tried_any = True
                    timeout = _attempt_timeout(deadline, route)
                    reply = Reply(grpc.StatusCode.OK)
                    is_retry = bool(attempt or index)
                    if is_retry:
                        self.budget.retries_active += 1
                    try:
                        async for item in self._attempt(
                            cluster,
                            endpoint.address,
                            method,
                            request,
                            context,
                            caller.name,
                            timeout,
                            reply,
                        ):
                            yield item
                    finally:
                        if is_retry:
                            self.budget.retries_active -= 1
                    if reply.code is grpc.StatusCode.OK or reply.messages_sent:
                        await _finish(context, reply)
                        return
                    last = reply
                    if not _retriable(reply, context) or _expired(deadline):
                        await _finish(context, reply)
                        return
            if snap.table.may_degrade(route, method) and method.server_streaming is False:
                self.counters["degraded"].add(1, {"route": route.name})
                parsed = ads_pb2.RankRequest.FromString(request)
                restricted = set(snap.config.restricted_categories)
                yield bid_only_ranking(parsed, restricted).SerializeToString()
                return
            if last is not None:
                await _finish(context, last)
                return
            raise Unavailable(
                f"no available endpoint for {method.path} in "
                f"{', '.join(c.config.name for c in clusters)}"
            )
        finally:
            self.budget.active -= 1
            snap.in_flight -= 1

    async def _attempt(
        self,
        cluster: ClusterRuntime,
        address: str,
        method: MethodInfo,
        request: bytes,
        context: grpc.aio.ServicerContext,
        caller: str,
        timeout_s: float | None,
        reply: Reply,
    ) -> AsyncIterator[bytes]:
        """One attempt against one endpoint; yields responses as they arrive and fills
        `reply` with how it ended."""
        endpoint = cluster.endpoint(address)
        assert endpoint is not None
        self.counters["attempts"].add(1, {"cluster": cluster.config.name})
        span = self._client_span(method, address)
        metadata = _upstream_metadata(context, caller, span)
        endpoint.in_flight += 1
        call: Any = None
        try:
            async with cluster.slot():
                channel = cluster.channel(address)
                if method.server_streaming:
                    call = channel.unary_stream(method.path)(
                        request, timeout=timeout_s, metadata=metadata
                    )
                else:
                    call = channel.unary_unary(method.path)(
                        request, timeout=timeout_s, metadata=metadata
                    )
                async for message in _relay(call, context, reply, method.server_streaming):
                    yield message
        except grpc.aio.AioRpcError as exc:
            reply.code, reply.details = exc.code(), exc.details() or ""
            reply.initial = _clean(exc.initial_metadata())
            reply.trailing = _clean(exc.trailing_metadata())
        except CircuitOpen as exc:
            reply.code, reply.details = grpc.StatusCode.UNAVAILABLE, str(exc)
        except asyncio.CancelledError:
            if call is not None:
                call.cancel()
            reply.code = grpc.StatusCode.CANCELLED
            raise
        finally:
            endpoint.in_flight -= 1
            span.set_attribute("rpc.response.status_code", reply.code.name)
            if reply.code is not grpc.StatusCode.OK:
                span.set_status(trace.Status(trace.StatusCode.ERROR, reply.code.name))
            span.end()
            outcome = _outcome(reply.code)
            snap_config = self.snapshot.config.outlier
            if record_outcome(cluster.endpoints, endpoint, outcome, time.monotonic(), snap_config):
                self.counters["ejections"].add(1, {"cluster": cluster.config.name})

    # ---- streaming request: one attempt, piped ---------------------------------------------
    async def stream_request(
        self,
        method: MethodInfo,
        requests: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[bytes]:
        caller = self.admission.admit(context, method.path)
        snap = self.snapshot
        route = self._route(snap, method)
        for config in snap.table.eligible_clusters(route, method):
            cluster = snap.clusters[config.name]
            endpoint = pick(cluster.endpoints, time.monotonic(), self.rng, set())
            if endpoint is None:
                continue
            reply = Reply(grpc.StatusCode.OK)
            snap.in_flight += 1
            try:
                async for item in self._pipe(
                    cluster, endpoint.address, method, requests, context, caller.name, reply
                ):
                    yield item
            finally:
                snap.in_flight -= 1
            await _finish(context, reply)
            return
        raise Unavailable(f"no available endpoint for {method.path}")

    async def _pipe(
        self,
        cluster: ClusterRuntime,
        address: str,
        method: MethodInfo,
        requests: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext,
        caller: str,
        reply: Reply,
    ) -> AsyncIterator[bytes]:
        endpoint = cluster.endpoint(address)
        assert endpoint is not None
        self.counters["attempts"].add(1, {"cluster": cluster.config.name})
        span = self._client_span(method, address)
        metadata = _upstream_metadata(context, caller, span)
        timeout = _deadline_timeout(context)
        endpoint.in_flight += 1
        call: Any = None
        try:
            channel = cluster.channel(address)
            if method.server_streaming:
                call = channel.stream_stream(method.path)(
                    requests, timeout=timeout, metadata=metadata
                )
            else:
                call = channel.stream_unary(method.path)(
                    requests, timeout=timeout, metadata=metadata
                )
            async for message in _relay(call, context, reply, method.server_streaming):
                yield message
        except grpc.aio.AioRpcError as exc:
            reply.code, reply.details = exc.code(), exc.details() or ""
            reply.trailing = _clean(exc.trailing_metadata())
            reply.initial = _clean(exc.initial_metadata())
        except asyncio.CancelledError:
            if call is not None:
                call.cancel()
            raise
        finally:
            endpoint.in_flight -= 1
            span.set_attribute("rpc.response.status_code", reply.code.name)
            span.end()

    def _client_span(self, method: MethodInfo, address: str) -> trace.Span:
        """The CLIENT span of one attempt (current RPC semantic conventions)."""
        host, _, port = address.rpartition(":")
        name = method.path.lstrip("/")
        return self.telemetry.tracer.start_span(
            name,
            kind=SpanKind.CLIENT,
            attributes={
                "rpc.system.name": "grpc",
                "rpc.method": name,
                "server.address": host,
                "server.port": int(port),
            },
        )

    def _route(self, snap: Snapshot, method: MethodInfo) -> RouteConfig:
        route = snap.table.route_for(method.path)
        if route is None:
            raise Unavailable(f"no route for {method.path}")
        return route


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _attempt_timeout(deadline: float | None, route: RouteConfig) -> float:
    if deadline is None:
        return route.per_try_timeout_s
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlineExceeded("deadline expired in the gateway")
    return min(route.per_try_timeout_s, remaining)


def _deadline_timeout(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else max(remaining, 0.0)


def _retriable(reply: Reply, context: grpc.aio.ServicerContext) -> bool:
    """A CANCELLED from upstream while our caller is still waiting means the upstream went
    away mid-call (a server stopping cancels its calls): as retriable as UNAVAILABLE."""
    if reply.code is grpc.StatusCode.CANCELLED:
        return not context.cancelled()
    return reply.code in RETRY_ON


def _outcome(code: grpc.StatusCode) -> Outcome:
    if code is grpc.StatusCode.OK:
        return Outcome.SUCCESS
    if code in _ENDPOINT_FAILURE:
        return Outcome.FAILURE
    if code is grpc.StatusCode.CANCELLED:
        return Outcome.NEUTRAL
    return Outcome.SUCCESS  # an application error from a healthy endpoint


def _clean(metadata: Any) -> Metadata:
    if not metadata:
        return ()
    return tuple((k, v) for k, v in metadata if k not in _DROP and not k.startswith(":"))


def _upstream_metadata(
    context: grpc.aio.ServicerContext, caller: str, span: trace.Span
) -> Metadata:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    forwarded = list(_clean(context.invocation_metadata()))
    forwarded.append(("x-isthmus-caller", caller))
    forwarded.extend(carrier.items())
    return tuple(forwarded)


async def _relay(
    call: Any, context: grpc.aio.ServicerContext, reply: Reply, streaming: bool
) -> AsyncIterator[bytes]:
    """Forward an upstream call's responses and metadata downstream; on success fill `reply`.
    Initial metadata goes out just before the first response, so a call that fails before
    answering can still be retried elsewhere."""
    if streaming:
        async for message in call:
            if not reply.messages_sent:
                await context.send_initial_metadata(_clean(await call.initial_metadata()))
            reply.messages_sent += 1
            yield message
    else:
        message = await call
        initial = _clean(await call.initial_metadata())
        if initial:
            await context.send_initial_metadata(initial)
        yield message
    reply.code = grpc.StatusCode.OK
    reply.trailing = _clean(await call.trailing_metadata())


async def _finish(context: grpc.aio.ServicerContext, reply: Reply) -> None:
    """End the downstream call exactly as the upstream one ended."""
    if reply.code is grpc.StatusCode.OK:
        if reply.trailing:
            context.set_trailing_metadata(reply.trailing)
        return
    await context.abort(reply.code, reply.details, reply.trailing)
