"""The transparent proxy: bytes in, bytes out; metadata, trailers, status, details, deadlines
and cancellation pass through (wire.py). All four call shapes take one path: admission,
inspection of PUBLIC requests, then attempts whose every next step (retry, fail over, give
up) is the pure decision of retry.py, on clusters from routing.py and endpoints from
balancer.py; when no cluster can answer, a route's named fallback (fallbacks.py) may, on the
request's bytes."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from services.contract.descriptors import MethodInfo
from services.contract.teams import Contract, load_contract
from services.core.errors import DeadlineExceeded, InvalidArgument, Unavailable
from services.core.telemetry import Telemetry
from services.gateway.admission import Admission
from services.gateway.balancer import EndpointState, RetryBudget, pick, record_outcome
from services.gateway.config import GatewayConfig, Outcome, RouteConfig
from services.gateway.fallbacks import Answer, prepare_fallbacks
from services.gateway.inspection import RequestInspector
from services.gateway.retry import (
    Attempted,
    Policy,
    Position,
    Step,
    after_attempt,
    after_no_endpoint,
)
from services.gateway.routing import RouteTable, build_route_table
from services.gateway.timeouts import (
    AttemptTimeouts,
    CallClock,
    CallExpired,
    attempt_timeouts,
    expiry_message,
)
from services.gateway.upstream import CircuitOpen, ClusterRuntime
from services.gateway.wire import Reply, clean, client_span, end_span, finish, upstream_metadata

# Of a caller's deadline, what a route with a fallback keeps back for it. The bid-only ranking
# of 1,000 candidates takes ~2 ms; the rest is slack for a late event loop: with 20 ms, CI on
# 2 cores lost 7 Rank calls to DEADLINE_EXCEEDED while a new replica started (the gateway's
# loop woke after the caller had given up), so a 300 ms caller now keeps 240 ms for attempts.
FALLBACK_RESERVE_S = 0.06
_DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED
_ENDPOINT_FAILURE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the routing tables say about one method, worked out once per snapshot."""

    route: RouteConfig
    clusters: tuple[ClusterRuntime, ...]
    policy: Policy  # retries and failover (retry.py)
    fallback: Answer | None  # answers when no cluster can (unary responses only)
    labels: dict[str, str]  # metric attributes of the route


@dataclass
class Snapshot:
    """Routing state a call keeps for its whole life (a reload swaps in a new one)."""

    config: GatewayConfig
    contract: Contract  # the methods it serves: isthmus' own and the loaded teams'
    inspector: RequestInspector
    table: RouteTable
    clusters: dict[str, ClusterRuntime]
    fallbacks: dict[str, Answer]  # prepared, by name
    in_flight: int = field(default=0)
    plans: dict[str, Plan] = field(default_factory=dict)

    def plan(self, method: MethodInfo) -> Plan:
        plan = self.plans.get(method.path)
        if plan is None:
            route = self.table.route_for(method.path)
            if route is None:
                raise Unavailable(f"no route for {method.path}")
            eligible = self.table.eligible_clusters(route, method)
            name = self.table.fallback_for(route, method)
            policy = Policy(
                self.table.attempts_per_cluster(route, method),
                len(eligible),
                frozenset(grpc.StatusCode[code] for code in route.retry_on),
            )
            plan = Plan(
                route,
                tuple(self.clusters[c.name] for c in eligible),
                policy,
                None if name is None or method.server_streaming else self.fallbacks[name],
                {"route": route.name},
            )
            self.plans[method.path] = plan
        return plan


class Gateway:
    """Holds the configuration in force and runs calls through it."""

    def __init__(self, config: GatewayConfig, base: Contract, telemetry: Telemetry) -> None:
        self.base = base  # the shipped contract; a config's descriptor_sets extend it
        self._base_inspector = RequestInspector(base.descriptors)
        self.telemetry = telemetry
        self.admission = Admission(config.auth)
        self.snapshot = self._snapshot(config, {})
        self.budget = RetryBudget(config.retry_budget)
        self.rng = random.Random()  # noqa: S311 (load balancing, not security)
        meter = telemetry.meter
        self.counters = {
            name: meter.create_counter(f"isthmus.gateway.{name}", unit="{call}")
            for name in (
                "attempts",
                "retries",
                "failovers",
                "ejections",
                "degraded",
                "refused_personal_data",
            )
        }

    @property
    def methods(self) -> dict[str, MethodInfo]:
        """Every method the gateway serves now (a reload may add or drop teams' methods)."""
        return self.snapshot.contract.methods

    def contract_for(self, config: GatewayConfig) -> Contract:
        """The contract `config` serves: the base one with its descriptor sets, read now and
        checked (ContractError, a ValueError, names the method or file at fault)."""
        if not config.descriptor_sets:
            return self.base
        return load_contract(config.descriptor_sets, self.base)

    def _snapshot(
        self,
        config: GatewayConfig,
        old: dict[str, ClusterRuntime],
        fallbacks: dict[str, Answer] | None = None,
        contract: Contract | None = None,
    ) -> Snapshot:
        contract = contract or self.contract_for(config)
        table = build_route_table(config, contract.methods)
        inspector = (
            self._base_inspector
            if contract is self.base
            else RequestInspector(contract.descriptors)
        ).with_check_key(config.pseudonym_check())
        if fallbacks is None:
            fallbacks = prepare_fallbacks(config)
        clusters = {}
        for cluster in config.clusters:
            previous = old.get(cluster.name)
            settings = config.settings_of(cluster)
            keep = (
                previous is not None
                and previous.config == cluster
                and previous.tls == cluster.dial_tls(config.upstream_tls)
                and previous.settings == settings
            )
            if keep and previous is not None:
                clusters[cluster.name] = previous
                continue
            fresh = ClusterRuntime(cluster, cluster.dial_tls(config.upstream_tls), settings)
            fresh.seed(previous)
            clusters[cluster.name] = fresh
        return Snapshot(config, contract, inspector, table, clusters, fallbacks)

    def reload(
        self,
        config: GatewayConfig,
        fallbacks: dict[str, Answer] | None = None,
        contract: Contract | None = None,
    ) -> list[ClusterRuntime]:
        """Swap in `config` (validated first) with its fallbacks and contract (prepared here
        unless given); returns clusters no longer used, for the caller to close once their
        in-flight calls are done. Anything refused leaves the old snapshot in force."""
        old = self.snapshot
        self.snapshot = self._snapshot(config, old.clusters, fallbacks, contract)
        self.admission = Admission(config.auth)
        # The new terms apply to the next decision; the counts of calls and retries in
        # flight carry over (a fresh budget would forget the retries already running).
        self.budget.config = config.retry_budget
        kept = set(map(id, self.snapshot.clusters.values()))
        return [c for c in old.clusters.values() if id(c) not in kept]

    # ---- calls: every shape through one path ---------------------------------------------
    async def unary_request(
        self, method: MethodInfo, request: bytes, context: grpc.aio.ServicerContext
    ) -> bytes | None:
        """A unary response is returned; server-streaming responses are written to `context`
        as they arrive (a plain coroutine either way: no generator layers per message)."""
        caller = self.admission.admit(context, method.path)
        snap = self.snapshot
        self._inspect(snap.inspector, method, request)
        plan = snap.plan(method)
        reply, clock = await self._call(snap, plan, method, request, context, caller.name)
        if reply is None and plan.fallback is not None:
            self.counters["degraded"].add(1, plan.labels)
            return plan.fallback(request)
        return await self._conclude(plan, method, reply, clock, context)

    async def stream_request(
        self,
        method: MethodInfo,
        requests: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext,
    ) -> bytes | None:
        """Client or bidirectional streaming: the same path with one attempt (a consumed
        request stream cannot be replayed). PUBLIC request messages are inspected as they
        pass; a refused one ends the call with INVALID_ARGUMENT, whatever the upstream did."""
        caller = self.admission.admit(context, method.path)
        snap = self.snapshot
        plan = snap.plan(method)
        refused: list[InvalidArgument] = []
        if method.is_public:
            requests = self._inspected(snap.inspector, method, requests, refused)
        try:
            reply, clock = await self._call(snap, plan, method, requests, context, caller.name)
        except asyncio.CancelledError:
            if refused:  # the upstream call was cancelled before the message went out
                raise refused[0] from None
            raise
        if refused:
            raise refused[0]
        return await self._conclude(plan, method, reply, clock, context)

    async def _call(
        self,
        snap: Snapshot,
        plan: Plan,
        method: MethodInfo,
        request: bytes | AsyncIterator[bytes],
        context: grpc.aio.ServicerContext,
        caller: str,
    ) -> tuple[Reply | None, CallClock]:
        if not plan.clusters:
            raise Unavailable(f"no cluster may serve {method.path}")
        clock = CallClock.start(time.monotonic(), context.time_remaining(), plan.route.timeout_s)
        snap.in_flight += 1
        try:
            with self.budget.call():
                reply = await self._attempts(plan, method, request, context, caller, clock)
        finally:
            snap.in_flight -= 1
        return reply, clock

    async def _conclude(
        self,
        plan: Plan,
        method: MethodInfo,
        reply: Reply | None,
        clock: CallClock,
        context: grpc.aio.ServicerContext,
    ) -> bytes | None:
        """End the caller's call with the reply to pass on, or say why there is none."""
        if reply is not None:
            await finish(context, reply)
            return reply.message
        if clock.expired(time.monotonic()):
            raise DeadlineExceeded(expiry_message(clock, plan.route.name))
        names = ", ".join(c.config.name for c in plan.clusters)
        raise Unavailable(f"no available endpoint for {method.path} in {names}")

    def _inspect(self, inspector: RequestInspector, method: MethodInfo, request: bytes) -> None:
        """Refuse a PUBLIC request carrying personal data (inspection.py), counted."""
        try:
            inspector.check(method, request)
        except InvalidArgument:
            self.counters["refused_personal_data"].add(1, {"rpc_method": method.path})
            raise

    async def _inspected(
        self,
        inspector: RequestInspector,
        method: MethodInfo,
        requests: AsyncIterator[bytes],
        refused: list[InvalidArgument],
    ) -> AsyncIterator[bytes]:
        """A request stream whose messages are inspected before they go upstream (by the
        contract the call started under); on a refusal the stream raises, which cancels the
        upstream call."""
        async for request in requests:
            try:
                self._inspect(inspector, method, request)
            except InvalidArgument as exc:
                refused.append(exc)
                raise
            yield request

    async def _attempts(
        self,
        plan: Plan,
        method: MethodInfo,
        request: bytes | AsyncIterator[bytes],
        context: grpc.aio.ServicerContext,
        caller: str,
        clock: CallClock,
    ) -> Reply | None:
        """Attempts across the plan's clusters, each next step decided by retry.py; the reply
        to pass on, or None when the route's fallback should answer or no endpoint could be
        tried."""
        if plan.fallback is not None:
            # Leave the fallback time to answer before the caller gives up: a route with a
            # fallback never lets its attempts run into the caller's deadline.
            clock = clock.reserve(FALLBACK_RESERVE_S)
        last: Reply | None = None
        index, here, tried = 0, 0, False
        exclude: set[str] = set()
        while True:
            cluster = plan.clusters[index]
            endpoint = pick(cluster.endpoints, time.monotonic(), self.rng, exclude)
            if endpoint is not None and tried:  # every try after the first is a retry
                self.counters["retries"].add(1, plan.labels)
                await asyncio.sleep(self.budget.backoff_s(here + 1, self.rng))
                # Pick again: endpoints may have come or gone during the back-off.
                endpoint = pick(cluster.endpoints, time.monotonic(), self.rng, exclude)
            if endpoint is None:
                at = Position(index, here, tried)
                step = after_no_endpoint(at, plan.policy, self.budget.may_retry())
            else:
                exclude.add(endpoint.address)
                is_retry, tried, here = tried, True, here + 1
                try:
                    timeouts = attempt_timeouts(
                        clock,
                        time.monotonic(),
                        plan.route.per_try_timeout_s,
                        retry_safe=plan.policy.attempts_per_cluster > 1,
                        server_streaming=method.server_streaming,
                    )
                except CallExpired:
                    if plan.fallback is not None:
                        return None
                    raise DeadlineExceeded(expiry_message(clock, plan.route.name)) from None
                with self.budget.attempt(is_retry):
                    last = await self._forward(
                        cluster, endpoint, method, request, context, caller, timeouts
                    )
                expired = clock.expired(time.monotonic())
                # The route's timeout, not the caller's deadline, ended it: say so.
                if expired and clock.route_binds() and last.code is _DEADLINE:
                    last.details = expiry_message(clock, plan.route.name)
                result = Attempted(
                    last.code,
                    answered=last.messages_sent > 0,
                    caller_cancelled=context.cancelled(),
                    time_left=not expired,
                    budget_allows=self.budget.may_retry(),
                )
                step = after_attempt(result, Position(index, here, tried), plan.policy)
            if step is Step.ANSWER:
                return last
            if step is Step.GIVE_UP:
                return None if plan.fallback is not None else last
            if step is Step.FAIL_OVER:
                if tried:
                    self.counters["failovers"].add(1, plan.labels)
                index, here, exclude = index + 1, 0, set()

    async def _forward(
        self,
        cluster: ClusterRuntime,
        endpoint: EndpointState,
        method: MethodInfo,
        request: bytes | AsyncIterator[bytes],
        context: grpc.aio.ServicerContext,
        caller: str,
        timeouts: AttemptTimeouts,
    ) -> Reply:
        """One attempt against one endpoint, for every call shape (`request` is the bytes of
        a unary request or the caller's request stream). Streamed responses are written to
        `context` as they arrive; initial metadata goes out just before the first response,
        so a call that fails before answering can still be retried elsewhere."""
        reply = Reply(grpc.StatusCode.OK)
        started = time.monotonic()
        self.counters["attempts"].add(1, cluster.attempt_labels(method.path))
        span = client_span(self.telemetry.tracer, method, endpoint.address)
        metadata = upstream_metadata(context, caller, span)
        endpoint.in_flight += 1
        call: Any = None
        try:
            await cluster.acquire()
            try:
                call = cluster.callable(endpoint.address, method)(
                    request, timeout=timeouts.rpc_s, metadata=metadata
                )
                if method.server_streaming:
                    if not await _first_response_in_time(call, timeouts.first_response_s):
                        reply.code = grpc.StatusCode.UNAVAILABLE
                        reply.details = (
                            f"{cluster.config.name}: no first response within the per-try timeout"
                        )
                        return reply
                    async for message in call:
                        if not reply.messages_sent:
                            initial = clean(await call.initial_metadata())
                            await context.send_initial_metadata(initial)
                        reply.messages_sent += 1
                        await context.write(message)
                else:
                    reply.message = await call
                    initial = clean(await call.initial_metadata())
                    if initial:
                        await context.send_initial_metadata(initial)
                reply.trailing = clean(await call.trailing_metadata())
            finally:
                cluster.release()
        except grpc.aio.AioRpcError as exc:
            reply.code, reply.details = exc.code(), exc.details() or ""
            reply.initial = clean(exc.initial_metadata())
            reply.trailing = clean(exc.trailing_metadata())
            if _per_try_timeout(reply.code, started, timeouts, context):
                # Our own per-try timeout, not the caller's deadline: the upstream did not
                # answer in time, which is a gateway timeout -- UNAVAILABLE in gRPC's mapping
                # of HTTP 504 -- so the caller may retry, and fails fast and closed.
                reply.code = grpc.StatusCode.UNAVAILABLE
                reply.details = f"{cluster.config.name}: no answer within the per-try timeout"
        except CircuitOpen as exc:
            reply.code, reply.details = grpc.StatusCode.UNAVAILABLE, str(exc)
        except asyncio.CancelledError:
            if call is not None:
                call.cancel()
            reply.code = grpc.StatusCode.CANCELLED
            raise
        finally:
            endpoint.in_flight -= 1
            end_span(span, reply.code)
            outlier = cluster.settings.outlier
            now = time.monotonic()
            if record_outcome(cluster.endpoints, endpoint, _outcome(reply.code), now, outlier):
                self.counters["ejections"].add(1, cluster.labels)
        return reply


async def _first_response_in_time(call: Any, limit_s: float | None) -> bool:
    """Wait up to `limit_s` for a server stream to start answering (its response headers,
    which come with its first message at the latest, or its end); False when the time ran
    out (the call is then cancelled). Nothing is consumed: the reader gets every message."""
    if limit_s is None:
        return True
    try:
        await asyncio.wait_for(call.initial_metadata(), limit_s)
    except TimeoutError:
        call.cancel()
        return False
    return True


def _per_try_timeout(
    code: grpc.StatusCode,
    started: float,
    timeouts: AttemptTimeouts,
    context: grpc.aio.ServicerContext,
) -> bool:
    """DEADLINE_EXCEEDED because the attempt's own timeout ran out while the caller still
    has time left (rather than the call's deadline, or the upstream's own answer)."""
    if code is not grpc.StatusCode.DEADLINE_EXCEEDED or not timeouts.per_try_binds:
        return False
    assert timeouts.rpc_s is not None
    remaining = context.time_remaining()
    elapsed = time.monotonic() - started
    return elapsed >= timeouts.rpc_s * 0.95 and (remaining is None or remaining > 0.001)


def _outcome(code: grpc.StatusCode) -> Outcome:
    if code is grpc.StatusCode.OK:
        return Outcome.SUCCESS
    if code in _ENDPOINT_FAILURE:
        return Outcome.FAILURE
    if code is grpc.StatusCode.CANCELLED:
        return Outcome.NEUTRAL
    return Outcome.SUCCESS  # an application error from a healthy endpoint
