"""The loyalty team's service: a plain gRPC server that knows nothing of isthmus. It reads
its messages from its own descriptor set (no generated code), serves one of its two proto
services, and stamps each answer with `--name` so a caller can see which deployment answered.

    python -m examples.loyalty.server --descriptor-set loyalty.binpb \\
        --serve member|offer --name loyalty-private --listen 127.0.0.1:50070 [--no-health]

`--no-health` leaves grpc.health.v1 out, as many existing services do (the gateway then
checks the cluster passively: `health_check: none`).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health, health_pb2_grpc

PACKAGE = "acme.loyalty.v1"
OFFERS = [("welcome-10", "10% off your first order"), ("double-points", "Double points")]


def message_classes(descriptor_set: Path) -> dict[str, Any]:
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        pool.AddSerializedFile(file.SerializeToString())
    names = ["Balance", "GetBalanceRequest", "RedeemRequest", "ListOffersRequest", "Offer"]
    names += ["OfferView", "ViewCount"]
    return {
        n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{n}"))
        for n in names
    }


def handlers(kind: str, name: str, m: dict[str, Any]) -> grpc.GenericRpcHandler:
    points: dict[str, int] = {}

    async def get_balance(request: Any, context: grpc.aio.ServicerContext) -> Any:
        return m["Balance"](points=points.get(request.member_email, 100), served_by=name)

    async def redeem(request: Any, context: grpc.aio.ServicerContext) -> Any:
        left = points.get(request.member_email, 100) - request.points
        if request.points <= 0 or left < 0:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not enough points")
        points[request.member_email] = left
        return m["Balance"](points=left, served_by=name)

    async def list_offers(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        for offer_id, title in OFFERS[: request.limit or len(OFFERS)]:
            yield m["Offer"](offer_id=offer_id, title=title, served_by=name)

    async def count_views(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        views = 0
        async for _ in requests:
            views += 1
        return m["ViewCount"](views=views, served_by=name)

    def unary(fn: Any, request: str, reply: str) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            fn, m[request].FromString, m[reply].SerializeToString
        )

    if kind == "member":
        methods = {
            "GetBalance": unary(get_balance, "GetBalanceRequest", "Balance"),
            "Redeem": unary(redeem, "RedeemRequest", "Balance"),
        }
        return grpc.method_handlers_generic_handler(f"{PACKAGE}.MemberService", methods)
    methods = {
        "ListOffers": grpc.unary_stream_rpc_method_handler(
            list_offers, m["ListOffersRequest"].FromString, m["Offer"].SerializeToString
        ),
        "CountViews": grpc.stream_unary_rpc_method_handler(
            count_views, m["OfferView"].FromString, m["ViewCount"].SerializeToString
        ),
    }
    return grpc.method_handlers_generic_handler(f"{PACKAGE}.OfferService", methods)


async def serve(args: argparse.Namespace) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (handlers(args.serve, args.name, message_classes(args.descriptor_set)),)
    )
    if not args.no_health:
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port(args.listen)
    await server.start()
    print(f"listening on {args.listen.rsplit(':', 1)[0]}:{port}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--descriptor-set", type=Path, required=True)
    parser.add_argument("--serve", choices=["member", "offer"], required=True)
    parser.add_argument("--name", required=True, help="stamped on every answer (served_by)")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--no-health", action="store_true", help="no grpc.health.v1 service")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
