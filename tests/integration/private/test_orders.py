"""OrderService on a real server, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from isthmus.common.v1 import common_pb2
from isthmus.orders.v1 import orders_pb2, orders_pb2_grpc
from services.private.db.tables import orders, refunds


def place_request(key: str = "key-00000001", **overrides: Any) -> orders_pb2.PlaceOrderRequest:
    fields: dict[str, Any] = {
        "idempotency_key": key,
        "unified_id": "u_1",
        "currency_code": "EUR",
        "line_items": [
            orders_pb2.LineItem(sku="shoe-42", quantity=2, unit_price_minor=4999),
            orders_pb2.LineItem(sku="sock-1", quantity=1, unit_price_minor=2),
        ],
        "payment_token": "tok_visa_abc",
    }
    fields.update(overrides)
    return orders_pb2.PlaceOrderRequest(**fields)


def refund_request(order_id: str, key: str, amount: int, currency: str = "EUR") -> Any:
    return orders_pb2.RefundOrderRequest(
        order_id=order_id,
        idempotency_key=key,
        amount=common_pb2.Money(currency_code=currency, amount_minor=amount),
        reason="customer returned the item",
    )


@pytest.fixture
def stub(private_server: Any) -> orders_pb2_grpc.OrderServiceStub:
    return orders_pb2_grpc.OrderServiceStub(private_server[0])


def count(db: Any, table: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_place_then_get(stub: Any) -> None:
    placed = stub.PlaceOrder(place_request())
    assert not placed.replayed
    assert placed.order.total == common_pb2.Money(currency_code="EUR", amount_minor=10000)
    assert placed.order.status == orders_pb2.ORDER_STATUS_CAPTURED
    got = stub.GetOrder(orders_pb2.GetOrderRequest(order_id=placed.order.order_id))
    assert got.order == placed.order


def test_replay_returns_the_first_order_and_reuse_is_refused(stub: Any) -> None:
    first = stub.PlaceOrder(place_request())
    again = stub.PlaceOrder(place_request())
    assert again.replayed
    assert again.order == first.order
    with pytest.raises(grpc.RpcError) as err:
        stub.PlaceOrder(place_request(currency_code="USD"))
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "idempotency_key was already used with a different request" in err.value.details()


def test_fifty_concurrent_placements_with_one_key_make_one_order(
    stub: Any, private_server: Any
) -> None:
    request = place_request("key-concurrent-1")
    with ThreadPoolExecutor(max_workers=50) as pool:
        replies = list(pool.map(lambda _: stub.PlaceOrder(request, timeout=60), range(50)))
    assert len({r.order.order_id for r in replies}) == 1
    assert sum(not r.replayed for r in replies) == 1
    assert count(private_server[2], orders) == 1


def test_refunds_partial_full_and_never_above_capture(stub: Any) -> None:
    order_id = stub.PlaceOrder(place_request()).order.order_id
    part = stub.RefundOrder(refund_request(order_id, "refund-0001", 4000))
    assert part.order.status == orders_pb2.ORDER_STATUS_PARTIALLY_REFUNDED
    assert part.order.refunded.amount_minor == 4000
    with pytest.raises(grpc.RpcError) as err:
        stub.RefundOrder(refund_request(order_id, "refund-0002", 6001))
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == (
        "refund of 6001 exceeds what is left to refund: 6000 of 10000 EUR captured"
    )
    rest = stub.RefundOrder(refund_request(order_id, "refund-0003", 6000))
    assert rest.order.status == orders_pb2.ORDER_STATUS_REFUNDED
    assert [r.amount.amount_minor for r in rest.order.refunds] == [4000, 6000]
    replay = stub.RefundOrder(refund_request(order_id, "refund-0001", 4000))
    assert replay.replayed
    assert replay.refund.refund_id == part.refund.refund_id


def test_racing_refunds_never_exceed_the_capture(stub: Any, private_server: Any) -> None:
    order_id = stub.PlaceOrder(place_request()).order.order_id  # 10000 captured

    def attempt(i: int) -> grpc.StatusCode:
        try:
            stub.RefundOrder(refund_request(order_id, f"race-{i:04d}", 3000), timeout=60)
        except grpc.RpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(attempt, range(12)))
    assert codes.count(grpc.StatusCode.OK) == 3
    assert codes.count(grpc.StatusCode.FAILED_PRECONDITION) == 9
    final = stub.GetOrder(orders_pb2.GetOrderRequest(order_id=order_id)).order
    assert final.refunded.amount_minor == 9000
    assert count(private_server[2], refunds) == 3


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            orders_pb2.PlaceOrderRequest(),
            "idempotency_key: is required; unified_id: is required; currency_code: is required "
            "(ISO 4217 code such as EUR); payment_token: is required; line_items: at least one "
            "line item is required",
        ),
        (place_request(currency_code="XYZ"), "currency_code: 'XYZ' is not an active ISO 4217"),
        (
            place_request(
                line_items=[orders_pb2.LineItem(sku="a", quantity=1, unit_price_minor=-5)]
            ),
            "line_items[0].unit_price_minor: must not be negative",
        ),
        (
            place_request(line_items=[orders_pb2.LineItem(sku="a", quantity=0)]),
            "line_items[0].quantity: must be 1 to 10000 (got 0)",
        ),
        (
            place_request(line_items=[orders_pb2.LineItem(sku="s", quantity=1)] * 101),
            "line_items: at most 100 line items (got 101)",
        ),
        (
            place_request(line_items=[orders_pb2.LineItem(sku="x" * 65, quantity=1)]),
            "line_items[0].sku: must be 1 to 64 characters (got 65)",
        ),
        (place_request(key="short"), "idempotency_key: must be 8 to 128 characters (got 5)"),
        (place_request(unified_id="u 1"), "unified_id: may only contain letters, digits"),
    ],
)
def test_bad_orders_are_invalid_argument(stub: Any, request_: Any, message: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.PlaceOrder(request_)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
    assert stub.PlaceOrder(place_request("key-still-up-1")).order.order_id  # server still up


def test_bad_refunds_are_invalid_argument(stub: Any) -> None:
    order_id = stub.PlaceOrder(place_request()).order.order_id
    cases = [
        (
            refund_request(order_id, "refund-neg-1", -1),
            "amount.amount_minor: must be greater than 0",
        ),
        (
            refund_request(order_id, "refund-usd-1", 100, "USD"),
            "amount.currency_code: USD does not match the order currency EUR",
        ),
        (
            orders_pb2.RefundOrderRequest(order_id=order_id, idempotency_key="refund-na-1"),
            "amount: is required; reason: is required",
        ),
    ]
    for request, message in cases:
        with pytest.raises(grpc.RpcError) as err:
            stub.RefundOrder(request)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert message in err.value.details()


def test_unknown_order_is_not_found(stub: Any) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetOrder(orders_pb2.GetOrderRequest(order_id="ord_missing"))
    assert err.value.code() is grpc.StatusCode.NOT_FOUND


def test_expired_deadline_starts_no_work(stub: Any, private_server: Any) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.PlaceOrder(place_request("key-deadline-1"), timeout=0.000001)
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
