"""Small real services used to exercise the server foundation (not product code).

`OrdersProbe` implements the generated OrderService and fails on purpose in recognisable ways;
`echo_binding` adds a raw-bytes service with all four call types. Run as a script it serves
both with `services.core.server.serve`, printing the bound port (for the SIGTERM test).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import grpc

from isthmus.orders.v1 import orders_pb2, orders_pb2_grpc
from services.core.config import ServerConfig
from services.core.errors import FieldViolation, InvalidArgument, NotFound
from services.core.identity import current_caller
from services.core.server import Binding, create_server, serve

ECHO_SERVICE = "isthmus.test.v1.EchoService"
SECRET = "4111-1111-1111-1111"


class OrdersProbe(orders_pb2_grpc.OrderServiceServicer):  # type: ignore[misc]
    async def PlaceOrder(
        self, request: orders_pb2.PlaceOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.PlaceOrderResponse:
        if request.idempotency_key == "crash":
            raise RuntimeError(f"card {SECRET} declined")  # a bug whose text holds PII
        problems = []
        if not request.line_items:
            problems.append(FieldViolation("line_items", "at least one line item is required"))
        if len(request.currency_code) != 3:
            problems.append(FieldViolation("currency_code", "must be a 3-letter ISO 4217 code"))
        if problems:
            raise InvalidArgument(problems)
        return orders_pb2.PlaceOrderResponse(order=orders_pb2.Order(order_id="o-1"))

    async def GetOrder(
        self, request: orders_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.GetOrderResponse:
        if request.order_id.startswith("slow"):
            await asyncio.sleep(float(request.order_id.removeprefix("slow-") or "0.5"))
            return orders_pb2.GetOrderResponse(order=orders_pb2.Order(order_id=request.order_id))
        if request.order_id == "self-abort":
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "aborted by the handler")
        raise NotFound(f"order {request.order_id} does not exist")

    async def RefundOrder(
        self, request: orders_pb2.RefundOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.RefundOrderResponse:
        caller = current_caller()
        refund = orders_pb2.Refund(reason=f"{caller.name}|{caller.source}")
        return orders_pb2.RefundOrderResponse(refund=refund)


async def _unary_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for i in range(int(request or b"3")):
        yield b"item-%d" % i
    if request == b"0":
        raise InvalidArgument.field("count", "must be positive")


async def _stream_unary(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    chunks = [chunk async for chunk in requests]
    if b"bad" in chunks:
        raise InvalidArgument.field(f"chunks[{chunks.index(b'bad')}]", "is bad")
    return b"".join(chunks)


async def _stream_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    async for chunk in requests:
        yield chunk.upper()


def echo_binding() -> Binding:
    handler = grpc.method_handlers_generic_handler(
        ECHO_SERVICE,
        {
            "List": grpc.unary_stream_rpc_method_handler(_unary_stream),
            "Join": grpc.stream_unary_rpc_method_handler(_stream_unary),
            "Shout": grpc.stream_stream_rpc_method_handler(_stream_stream),
        },
    )
    return Binding(
        ECHO_SERVICE, lambda server: server.add_generic_rpc_handlers((handler,)), reflect=False
    )


def orders_binding() -> Binding:
    return Binding(
        "isthmus.orders.v1.OrderService",
        lambda server: orders_pb2_grpc.add_OrderServiceServicer_to_server(OrdersProbe(), server),
    )


async def _main() -> None:
    config = ServerConfig(shutdown_grace_s=float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
    server, port = create_server(config, [orders_binding(), echo_binding()])
    print(port, flush=True)
    await serve(server)
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(_main())
