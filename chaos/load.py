"""Steady probe traffic through the gateway while a drill runs, and the record of every call.

Several callers, as the demo's internal services: `ad-server` ranks and tracks (PUBLIC),
`storefront` reads profiles and `checkout` places orders (SENSITIVE). The channel uses the
shipped client service config (protos/client_service_config.json: per-method timeouts and
retries on UNAVAILABLE), so what a drill measures is what a real caller of ours sees. Orders
are retried by the caller with their idempotency key until acknowledged or out of time, and
every acknowledged order id and `Track` event id is kept for reconciliation.

The load runs on its own event loop in a background thread; probes read it through
`window()` while it runs.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from isthmus.ads.v1 import ads_pb2, ads_pb2_grpc
from isthmus.events.v1 import events_pb2, events_pb2_grpc
from isthmus.orders.v1 import orders_pb2, orders_pb2_grpc
from isthmus.profile.v1 import profile_pb2, profile_pb2_grpc
from services.contract.client_config import python_channel_settings
from services.local.traffic import Driver, Shopper

PATIENT_S = 5.0  # every call's timeout unless the drill asks for the shipped ones
CATEGORIES = ["shoes", "bags", "sport", "beauty", "alcohol", "weapons", "gambling"]


@dataclass(frozen=True)
class Call:
    """One call as the caller saw it (after the client's own retries)."""

    t_s: float  # completion, seconds on the load's clock
    method: str  # "AdService/Rank"
    public: bool
    code: str  # grpc.StatusCode name
    latency_s: float
    degraded: bool = False  # Rank answered by the gateway's bid-only fallback
    compliant: bool = True  # a degraded answer obeys the rules file


@dataclass
class Window:
    """Calls of one class in a time window."""

    total: int = 0
    ok: int = 0
    degraded: int = 0
    noncompliant: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def success_ratio(self) -> float | None:
        return None if self.total == 0 else self.ok / self.total


def ramped_rate(
    base_rps: float, waited_s: float, step_s: float, factor: float, max_factor: float
) -> float:
    """The rate after `waited_s` of a ramp that multiplies `base_rps` by `factor` every
    `step_s`, capped at `max_factor` x `base_rps`. Pure."""
    if base_rps <= 0 or step_s <= 0 or factor < 1 or max_factor < 1 or waited_s < 0:
        raise ValueError(
            "ramp: need base_rps > 0, step_s > 0, factor >= 1, max_factor >= 1, waited_s >= 0"
        )
    rate, cap = base_rps, base_rps * max_factor
    for _ in range(int(waited_s // step_s)):
        if rate >= cap:
            break
        rate *= factor
    return round(min(rate, cap), 3)


class SteadyLoad:
    """`rps` rounds per second; each round ranks and tracks, and sometimes reads a profile
    or places an order."""

    def __init__(
        self,
        gateway: str,
        tokens: dict[str, str],
        rps: float = 20.0,
        shoppers: int = 16,
        compliance: Callable[[ads_pb2.RankRequest, ads_pb2.RankResponse], bool] | None = None,
        seed: int = 11,
        client_retries: bool = True,
        shipped_timeouts: bool = False,
    ) -> None:
        self.client_retries = client_retries
        # The shipped per-method timeouts (Rank 0.3 s, Track 2 s, ...) instead of 5 s a call.
        self.shipped_timeouts = shipped_timeouts
        self.gateway = gateway
        self.tokens = tokens
        self.rps = rps
        self.shopper_count = shoppers
        self.compliance = compliance
        self.rng = random.Random(seed)  # noqa: S311 (synthetic traffic)
        self.calls: list[Call] = []
        self.orders: dict[str, str] = {}  # idempotency key -> order id, acknowledged
        self.order_attempts: dict[str, int] = {}  # idempotency key -> PlaceOrder calls made
        self.events: dict[str, float] = {}  # event id acknowledged by Track -> when
        self.shoppers: list[Shopper] = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self.timeouts: dict[str, float] = {}  # "AdService/Rank" -> seconds, from the config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stubs: dict[str, _Stubs] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return time.monotonic() - self.started

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self, timeout_s: float = 60) -> None:
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self.error is not None:
            self.stop()
            raise RuntimeError(f"load could not start: {self.error or 'onboarding timed out'}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported through start() / self.error
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        options, self.timeouts = python_channel_settings(self.client_retries)
        driver = Driver(self.gateway, self.tokens, options=options)
        # One channel (one connection) per caller, as separate services would have: with
        # several gateway instances on one address they land on different instances.
        own = [*options, ("grpc.use_local_subchannel_pool", 1)]  # not one shared connection
        channels = {
            c: grpc.aio.insecure_channel(self.gateway, options=own)
            for c in ("ad-server", "storefront", "checkout")
        }
        stubs = {caller: _Stubs(channel) for caller, channel in channels.items()}
        self.shoppers = await driver.onboard(self.shopper_count, concurrency=4)
        await driver.channel.close()
        if not self.shoppers:
            raise RuntimeError("no shopper could be onboarded through the gateway")
        self.started = time.monotonic()
        self._loop, self._stubs = asyncio.get_running_loop(), stubs
        self._ready.set()
        tasks = self._tasks
        owed = 0.0
        last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            owed += (now - last) * self.rps
            last = now
            while owed >= 1.0 and len(tasks) < 64:
                owed -= 1.0
                task = asyncio.create_task(self._round(stubs))
                tasks.add(task)
                task.add_done_callback(self._finished(tasks))
            await asyncio.sleep(0.02)
        self._loop = None  # no burst into a loop that is winding down
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        for channel in channels.values():
            await channel.close()

    def burst(self, calls_per_caller: int) -> None:
        """A moment of peak concurrency, from any thread: every caller starts
        `calls_per_caller` calls at once (rankings with their clicks, profile reads, orders),
        on top of the steady rate. Returns once they are on their way."""
        loop = self._loop
        if loop is None or self._stop.is_set():
            raise RuntimeError("the load is not running")

        async def launch() -> None:
            for _ in range(calls_per_caller):
                for call in self._burst_calls():
                    task = asyncio.create_task(call)
                    self._tasks.add(task)
                    task.add_done_callback(self._finished(self._tasks))
            await asyncio.sleep(0)  # let them start

        asyncio.run_coroutine_threadsafe(launch(), loop).result(timeout=10)

    def _burst_calls(self) -> list[Any]:
        shopper = self.rng.choice(self.shoppers)
        storefront = self._stubs["storefront"].profiles.GetProfile
        return [
            self._rank_and_track(self._stubs["ad-server"], shopper),
            self._call(
                "storefront",
                "ProfileService/GetProfile",
                False,
                storefront,
                profile_pb2.GetProfileRequest(unified_id=shopper.unified_id),
            ),
            self._order(self._stubs["checkout"], shopper),
        ]

    async def _rank_and_track(self, stubs: _Stubs, shopper: Shopper) -> None:
        request = self.rank_request(shopper)
        await self._call("ad-server", "AdService/Rank", True, stubs.ads.Rank, request)
        await self._track(stubs, shopper, request.request_id)

    def _finished(self, tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        """A round that raised (a bug, not a failed call: those are recorded) stops the load
        loudly rather than leaving a drill measuring nothing."""

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                self.error = task.exception()
                self._stop.set()

        return done

    # ---- one round ---------------------------------------------------------------------
    async def _call(
        self,
        caller: str,
        method: str,
        public: bool,
        stub_call: Any,
        request: Any,
    ) -> Any:
        metadata = (("authorization", f"Bearer {self.tokens[caller]}"),)
        timeout_s = self.timeouts.get(method, PATIENT_S) if self.shipped_timeouts else PATIENT_S
        started = time.perf_counter()
        try:
            answer = await stub_call(request, metadata=metadata, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            self._record(method, public, exc.code().name, started)
            return None
        degraded = compliant = False
        if isinstance(answer, ads_pb2.RankResponse) and not answer.model_version:
            degraded = True
            compliant = self.compliance(request, answer) if self.compliance else True
        self._record(method, public, "OK", started, degraded, compliant or not degraded)
        return answer

    def _record(
        self,
        method: str,
        public: bool,
        code: str,
        started: float,
        degraded: bool = False,
        compliant: bool = True,
    ) -> None:
        latency = time.perf_counter() - started
        self.calls.append(Call(self.now(), method, public, code, latency, degraded, compliant))

    async def _round(self, stubs: dict[str, _Stubs]) -> None:
        shopper = self.rng.choice(self.shoppers)
        await self._rank_and_track(stubs["ad-server"], shopper)
        roll = self.rng.random()
        if roll < 0.25:
            await self._call(
                "storefront",
                "ProfileService/GetProfile",
                False,
                stubs["storefront"].profiles.GetProfile,
                profile_pb2.GetProfileRequest(unified_id=shopper.unified_id),
            )
        elif roll < 0.40:
            await self._order(stubs["checkout"], shopper)

    def rank_request(self, shopper: Shopper) -> ads_pb2.RankRequest:
        adult = self.rng.random() < 0.6
        candidates = [
            ads_pb2.Candidate(
                ad_id=f"ad-{i}",
                campaign_id=f"camp-{i % 8}",
                advertiser_id=f"adv-{i % 5}",
                item_id=str(self.rng.randrange(80)),
                cpc_bid_micros=200_000 + 10_000 * self.rng.randrange(60),
                categories=[CATEGORIES[i % len(CATEGORIES)]],
            )
            for i in range(40)
        ]
        return ads_pb2.RankRequest(
            request_id=uuid.uuid4().hex,
            pseudonymous_user_id=shopper.pseudonymous_id,
            context=ads_pb2.RankContext(
                placement_id="home-top",
                slot_count=4,
                region_code=shopper.region,
                age_band=ads_pb2.AGE_BAND_ADULT if adult else ads_pb2.AGE_BAND_UNSPECIFIED,
            ),
            candidates=candidates,
        )

    async def _track(self, stubs: _Stubs, shopper: Shopper, request_id: str) -> None:
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        event = events_pb2.Event(
            event_id=uuid.uuid4().hex,
            type=events_pb2.EVENT_TYPE_IMPRESSION,
            event_time=now,
            pseudonymous_user_id=shopper.pseudonymous_id,
            rank_request_id=request_id,
            ad_id="ad-0",
            campaign_id="camp-0",
            placement_id="home-top",
            position=1,
        )
        answer = await self._call(
            "ad-server",
            "EventService/Track",
            True,
            stubs.events.Track,
            events_pb2.TrackRequest(events=[event]),
        )
        if answer is not None and answer.accepted_count == 1:
            self.events[event.event_id] = self.now()

    async def _order(self, stubs: _Stubs, shopper: Shopper, budget_s: float = 20.0) -> None:
        """A checkout retries its order with the same idempotency key until acknowledged."""
        key = uuid.uuid4().hex
        request = orders_pb2.PlaceOrderRequest(
            idempotency_key=key,
            unified_id=shopper.unified_id,
            currency_code="EUR",
            line_items=[orders_pb2.LineItem(sku="sku-1", quantity=1, unit_price_minor=4999)],
            payment_token=f"tok_{uuid.uuid4().hex[:16]}",
        )
        deadline = time.monotonic() + budget_s
        while not self._stop.is_set():
            self.order_attempts[key] = self.order_attempts.get(key, 0) + 1
            answer = await self._call(
                "checkout", "OrderService/PlaceOrder", False, stubs.orders.PlaceOrder, request
            )
            if answer is not None:
                self.orders[key] = answer.order.order_id
                return
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.5)

    # ---- reading -----------------------------------------------------------------------
    def window(
        self, start_s: float, end_s: float, public: bool | None = None, method: str = ""
    ) -> Window:
        """Calls that completed in [start_s, end_s) of one class (None = both), or of one
        method ("AdService/Rank") when `method` is given."""
        out = Window()
        for call in list(self.calls):
            if not start_s <= call.t_s < end_s or (public is not None and call.public != public):
                continue
            if method and call.method != method:
                continue
            out.total += 1
            out.codes[call.code] = out.codes.get(call.code, 0) + 1
            if call.code == "OK":
                out.ok += 1
                out.latencies_s.append(call.latency_s)
            out.degraded += call.degraded
            out.noncompliant += not call.compliant
        return out


class _Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.ads = ads_pb2_grpc.AdServiceStub(channel)
        self.events = events_pb2_grpc.EventServiceStub(channel)
        self.profiles = profile_pb2_grpc.ProfileServiceStub(channel)
        self.orders = orders_pb2_grpc.OrderServiceStub(channel)
