"""Real gRPC upstream servers for gateway tests: raw-bytes handlers for the test EchoService
(the test proto is only compiled to a descriptor set) and a stub AdService."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2

from isthmus.ads.v1 import ads_pb2, ads_pb2_grpc
from services.core.config import ServerConfig
from services.core.server import Binding, Server, create_server

ECHO = "isthmus.testing.v1.EchoService"


def _text(raw: bytes) -> str:
    # EchoRequest/EchoResponse: field 1, length-delimited (enough for test payloads < 128 B).
    return raw[2:].decode() if raw else ""


def _msg(text: str) -> bytes:
    data = text.encode()
    return b"\x0a" + bytes([len(data)]) + data


async def _slept(text: str) -> bool:
    """A "sleep:SECONDS" part of a stream: sleep (it answers nothing itself)."""
    if not text.startswith("sleep:"):
        return False
    await asyncio.sleep(float(text[6:]))
    return True


class Echo:
    """Behaviour keyed by the request text: "fail:CODE", "sleep:SECONDS", "meta", "rich"
    (in streams, a "sleep:SECONDS" part sleeps and answers nothing)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: Counter[str] = Counter()
        self.cancelled = 0
        self.seen: list[str] = []  # every request text that reached this upstream

    def unary_for(self, method: str):  # type: ignore[no-untyped-def]
        async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            self.calls[method] += 1
            return await self.unary(request, context)

        return handle

    async def unary(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        text = _text(request)
        self.seen.append(text)
        metadata = dict(context.invocation_metadata() or ())
        await context.send_initial_metadata((("x-served-by", self.name),))
        context.set_trailing_metadata(
            (
                ("x-trailer", "t-" + self.name),
                ("x-seen-caller", str(metadata.get("x-isthmus-caller"))),
                ("x-seen-traceparent", str(metadata.get("traceparent", ""))),
                ("x-seen-custom", str(metadata.get("x-custom", ""))),
            )
        )
        if text.startswith("sleep:"):
            try:
                await asyncio.sleep(float(text[6:]))
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if text.startswith("fail:"):
            await context.abort(grpc.StatusCode[text[5:]], f"failed on {self.name}")
        if text == "rich":
            detail = error_details_pb2.ErrorInfo(reason="QUOTA", domain="test")
            status = status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message="rich failure")
            status.details.add().Pack(detail)
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "rich failure",
                (("grpc-status-details-bin", status.SerializeToString()),),
            )
        if text == "deadline":
            remaining = context.time_remaining()
            return _msg(f"{remaining:.3f}")
        return _msg(f"{self.name}:{text}")

    async def split(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        self.calls["Split"] += 1
        self.seen.append(_text(request))
        for part in _text(request).split(","):
            if not await _slept(part):
                yield _msg(part)

    async def join(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> bytes:
        self.calls["Join"] += 1
        parts = [_text(r) async for r in requests]
        self.seen.extend(parts)
        for part in parts:
            await _slept(part)
        return _msg("+".join(p for p in parts if not p.startswith("sleep:")))

    async def chat(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        self.calls["Chat"] += 1
        async for request in requests:
            self.seen.append(_text(request))
            if not await _slept(_text(request)):
                yield _msg(_text(request).upper())

    def binding(self) -> Binding:
        handler = grpc.method_handlers_generic_handler(
            ECHO,
            {
                "Unary": grpc.unary_unary_rpc_method_handler(self.unary_for("Unary")),
                "Write": grpc.unary_unary_rpc_method_handler(self.unary_for("Write")),
                "Secret": grpc.unary_unary_rpc_method_handler(self.unary_for("Secret")),
                "Split": grpc.unary_stream_rpc_method_handler(self.split),
                "Join": grpc.stream_unary_rpc_method_handler(self.join),
                "Chat": grpc.stream_stream_rpc_method_handler(self.chat),
            },
        )
        return Binding(ECHO, lambda s: s.add_generic_rpc_handlers((handler,)), reflect=False)


class Ads(ads_pb2_grpc.AdServiceServicer):
    """Ranks by bid and says which upstream answered (in model_version)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.delay_s = 0.0  # set by a test: an upstream that answers too late

    async def Rank(
        self, request: ads_pb2.RankRequest, context: grpc.aio.ServicerContext
    ) -> ads_pb2.RankResponse:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        ranked = sorted(request.candidates, key=lambda c: -c.cpc_bid_micros)
        return ads_pb2.RankResponse(
            request_id=request.request_id,
            model_version=self.name,
            ads=[ads_pb2.RankedAd(ad_id=c.ad_id, position=i + 1) for i, c in enumerate(ranked)],
        )

    def binding(self) -> Binding:
        return Binding(
            "isthmus.ads.v1.AdService",
            lambda s: ads_pb2_grpc.add_AdServiceServicer_to_server(self, s),
        )


async def start_upstream(name: str) -> tuple[Server, int, Echo, Ads]:
    echo, ads = Echo(name), Ads(name)
    server, port = create_server(ServerConfig(), [echo.binding(), ads.binding()])
    await server.start()
    return server, port, echo, ads
