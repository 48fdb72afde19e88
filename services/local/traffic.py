"""Demo traffic through the gateway, as internal services would send it: shoppers are
onboarded (SENSITIVE: identity, profile with consents), then visit -- a Rank, impressions and
clicks tracked, now and then a profile read or an order -- at a rate that follows a
compressed peak-season day. Every call's status and latency is kept."""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from isthmus.ads.v1 import ads_pb2, ads_pb2_grpc
from isthmus.common.v1 import common_pb2
from isthmus.events.v1 import events_pb2, events_pb2_grpc
from isthmus.orders.v1 import orders_pb2, orders_pb2_grpc
from isthmus.profile.v1 import profile_pb2, profile_pb2_grpc
from services.contract.client_config import python_channel_settings

REGIONS = [("DE", "de-DE"), ("FR", "fr-FR"), ("GB", "en-GB"), ("US", "en-US")]
CATEGORIES = ["shoes", "bags", "dresses", "sport", "beauty", "alcohol"]


def rate_at(t_s: float, seconds: float, base_rps: float, peak_factor: float) -> float:
    """Visits per second: baseline at the ends, `peak_factor` x baseline in the middle."""
    phase = min(max(t_s / seconds, 0.0), 1.0)
    return base_rps * (1.0 + (peak_factor - 1.0) * math.sin(math.pi * phase) ** 2)


@dataclass
class Shopper:
    email: str
    phone: str
    unified_id: str = ""
    pseudonymous_id: str = ""
    region: str = "DE"
    language: str = "de-DE"


@dataclass
class CallLog:
    """Status and latency of every call, by method, plus per-second series."""

    started: float = field(default_factory=time.monotonic)
    codes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    degraded: int = 0
    bid_only: int = 0
    events_accepted: int = 0
    model_versions: Counter[str] = field(default_factory=Counter)
    window: list[tuple[float, float, bool]] = field(default_factory=list)  # (t, latency, ok)

    def record(self, method: str, code: grpc.StatusCode, latency_s: float) -> None:
        self.codes[method][code.name] += 1
        if code == grpc.StatusCode.OK:
            self.latencies[method].append(latency_s)
        self.window.append((time.monotonic() - self.started, latency_s, code == grpc.StatusCode.OK))

    def totals(self) -> tuple[int, int]:
        ok = sum(c["OK"] for c in self.codes.values())
        return ok, sum(sum(c.values()) for c in self.codes.values()) - ok


class Driver:
    def __init__(
        self,
        gateway: str,
        tokens: dict[str, str],
        seed: int = 7,
        options: list[tuple[str, Any]] | None = None,
    ) -> None:
        # As every internal caller: the shipped client service config (retries for retry-safe
        # RPCs, per-method timeouts given per call).
        default_options, self.timeouts = python_channel_settings()
        self.channel = grpc.aio.insecure_channel(gateway, options=options or default_options)
        self.tokens = tokens
        self.rng = random.Random(seed)  # noqa: S311 (synthetic traffic)
        self.log = CallLog()
        self.ads = ads_pb2_grpc.AdServiceStub(self.channel)
        self.events = events_pb2_grpc.EventServiceStub(self.channel)
        self.profiles = profile_pb2_grpc.ProfileServiceStub(self.channel)
        self.orders = orders_pb2_grpc.OrderServiceStub(self.channel)

    async def call(
        self, caller: str, method: str, stub_call: Callable[..., Any], request: Any
    ) -> Any:
        metadata = (("authorization", f"Bearer {self.tokens[caller]}"),)
        started = time.perf_counter()
        try:
            timeout = self.timeouts.get(method, 5.0)
            answer = await stub_call(request, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            self.log.record(method, exc.code(), time.perf_counter() - started)
            return None
        self.log.record(method, grpc.StatusCode.OK, time.perf_counter() - started)
        return answer

    # --- onboarding (SENSITIVE, private zone) ----------------------------------------------

    async def onboard(self, count: int, concurrency: int = 8) -> list[Shopper]:
        shoppers = [Shopper(f"shopper{i}@example.com", f"+4930{1000000 + i}") for i in range(count)]
        gate = asyncio.Semaphore(concurrency)

        async def one(shopper: Shopper) -> None:
            region, language = self.rng.choice(REGIONS)
            shopper.region, shopper.language = region, language
            async with gate:
                resolved = await self.call(
                    "storefront",
                    "ProfileService/ResolveIdentity",
                    self.profiles.ResolveIdentity,
                    profile_pb2.ResolveIdentityRequest(
                        identifiers=[profile_pb2.Identifier(email=shopper.email)],
                        region_code=region,
                        create_if_missing=True,
                    ),
                )
                if resolved is None:
                    return
                shopper.unified_id = resolved.unified_id
                shopper.pseudonymous_id = resolved.pseudonymous_id
                consent = profile_pb2.Consent(
                    channel=profile_pb2.CONTACT_CHANNEL_PERSONALIZED_ADS,
                    granted=self.rng.random() < 0.9,
                )
                await self.call(
                    "storefront",
                    "ProfileService/UpsertProfile",
                    self.profiles.UpsertProfile,
                    profile_pb2.UpsertProfileRequest(
                        profile=profile_pb2.Profile(
                            unified_id=shopper.unified_id,
                            email=shopper.email,
                            phone_number=shopper.phone,
                            language_code=language,
                            region_code=region,
                            consents=[consent],
                        )
                    ),
                )

        await asyncio.gather(*(one(s) for s in shoppers))
        return [s for s in shoppers if s.pseudonymous_id]

    # --- a visit (PUBLIC ranking and tracking; sometimes SENSITIVE) --------------------------

    async def visit(self, shopper: Shopper) -> None:
        request_id = uuid.uuid4().hex
        candidates = [
            ads_pb2.Candidate(
                ad_id=f"ad-{i}",
                campaign_id=f"camp-{i % 12}",
                advertiser_id=f"adv-{i % 5}",
                item_id=str(self.rng.randrange(80)),
                cpc_bid_micros=200_000 + 10_000 * self.rng.randrange(60),
                categories=[CATEGORIES[i % len(CATEGORIES)]],
            )
            for i in range(200)
        ]
        ranked = await self.call(
            "ad-server",
            "AdService/Rank",
            self.ads.Rank,
            ads_pb2.RankRequest(
                request_id=request_id,
                pseudonymous_user_id=shopper.pseudonymous_id,
                context=ads_pb2.RankContext(
                    placement_id="home-top",
                    slot_count=4,
                    device_type=common_pb2.DEVICE_TYPE_MOBILE,
                    region_code=shopper.region,
                    age_band=ads_pb2.AGE_BAND_ADULT
                    if self.rng.random() < 0.7
                    else ads_pb2.AGE_BAND_UNSPECIFIED,
                ),
                candidates=candidates,
            ),
        )
        if ranked is None:
            return
        if not ranked.model_version:
            self.log.bid_only += 1  # the gateway's fallback: no ranking replica answered
        elif ranked.degraded:
            self.log.degraded += 1  # the model ran on default features (no snapshot yet)
        self.log.model_versions[ranked.model_version or "bid-only"] += 1
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        events = []
        for ad in ranked.ads:
            common = {
                "event_time": now,
                "pseudonymous_user_id": shopper.pseudonymous_id,
                "rank_request_id": request_id,
                "ad_id": ad.ad_id,
                "campaign_id": ad.campaign_id,
                "placement_id": "home-top",
                "position": ad.position,
                "model_version": ranked.model_version,
            }
            events.append(
                events_pb2.Event(
                    event_id=uuid.uuid4().hex, type=events_pb2.EVENT_TYPE_IMPRESSION, **common
                )
            )
            if self.rng.random() < min(0.5, ad.pctr * 25):
                events.append(
                    events_pb2.Event(
                        event_id=uuid.uuid4().hex, type=events_pb2.EVENT_TYPE_CLICK, **common
                    )
                )
        tracked = await self.call(
            "storefront",
            "EventService/Track",
            self.events.Track,
            events_pb2.TrackRequest(events=events),
        )
        if tracked is not None:
            self.log.events_accepted += tracked.accepted_count
        roll = self.rng.random()
        if roll < 0.06:
            await self.call(
                "storefront",
                "ProfileService/GetProfile",
                self.profiles.GetProfile,
                profile_pb2.GetProfileRequest(unified_id=shopper.unified_id),
            )
        elif roll < 0.10 and ranked.ads:
            top = ranked.ads[0]
            await self.call(
                "checkout",
                "OrderService/PlaceOrder",
                self.orders.PlaceOrder,
                orders_pb2.PlaceOrderRequest(
                    idempotency_key=uuid.uuid4().hex,
                    unified_id=shopper.unified_id,
                    currency_code="EUR",
                    line_items=[
                        orders_pb2.LineItem(
                            sku=f"sku-{top.ad_id}", quantity=1, unit_price_minor=4999
                        )
                    ],
                    payment_token=f"tok_{uuid.uuid4().hex[:16]}",
                    attribution=orders_pb2.Attribution(
                        rank_request_id=request_id, ad_id=top.ad_id, campaign_id=top.campaign_id
                    ),
                ),
            )

    async def peak_day(
        self,
        shoppers: list[Shopper],
        seconds: float,
        base_rps: float,
        peak_factor: float,
        on_tick: Callable[[float, float], None],
        max_in_flight: int = 64,
    ) -> None:
        """Open-loop visits at rate_at(t); `on_tick(t, rate)` about every second."""
        started = time.monotonic()
        owed = 0.0
        tasks: set[asyncio.Task[None]] = set()
        next_tick = 1.0
        while (t := time.monotonic() - started) < seconds:
            rate = rate_at(t, seconds, base_rps, peak_factor)
            owed += rate * 0.05
            while owed >= 1.0 and len(tasks) < max_in_flight:
                owed -= 1.0
                task = asyncio.create_task(self.visit(self.rng.choice(shoppers)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if t >= next_tick:
                on_tick(t, rate)
                next_tick += 1.0
            await asyncio.sleep(0.05)
        if tasks:
            await asyncio.gather(*tasks)

    async def close(self) -> None:
        await self.channel.close()
