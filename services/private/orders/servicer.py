"""OrderService gRPC adapter: validate -> store (in a worker thread) -> response."""

from __future__ import annotations

import grpc

from isthmus.orders.v1 import orders_pb2, orders_pb2_grpc
from services.core.blocking import BlockingPool
from services.private.keys import Keys
from services.private.orders.store import OrderStore
from services.private.orders.validation import validate_get, validate_place, validate_refund


class OrderServicer(orders_pb2_grpc.OrderServiceServicer):
    def __init__(self, store: OrderStore, keys: Keys, pool: BlockingPool) -> None:
        self._store = store
        self._keys = keys
        self._pool = pool

    async def PlaceOrder(
        self, request: orders_pb2.PlaceOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.PlaceOrderResponse:
        total = validate_place(request)
        fingerprint = self._keys.fingerprint(request.SerializeToString(deterministic=True))
        order, replayed = await self._pool.run(
            context, self._store.place, request, total, fingerprint
        )
        return orders_pb2.PlaceOrderResponse(order=order, replayed=replayed)

    async def GetOrder(
        self, request: orders_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.GetOrderResponse:
        validate_get(request)
        order = await self._pool.run(context, self._store.get, request.order_id)
        return orders_pb2.GetOrderResponse(order=order)

    async def RefundOrder(
        self, request: orders_pb2.RefundOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.RefundOrderResponse:
        validate_refund(request)
        fingerprint = self._keys.fingerprint(request.SerializeToString(deterministic=True))
        order, refund, replayed = await self._pool.run(
            context, self._store.refund, request, fingerprint
        )
        return orders_pb2.RefundOrderResponse(order=order, refund=refund, replayed=replayed)
