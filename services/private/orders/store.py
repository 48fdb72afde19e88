"""Orders and refunds in the database. Exactly-once comes from unique keys in the database,
not from process memory, so it holds across replicas, restarts and concurrent retries."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from isthmus.common.v1 import common_pb2
from isthmus.orders.v1 import orders_pb2
from services.core.errors import FailedPrecondition, InvalidArgument, NotFound
from services.private.clock import now_us, to_timestamp
from services.private.db.engine import Database
from services.private.db.tables import orders, refunds

STATUS = orders_pb2.OrderStatus
REUSED_KEY = "idempotency_key was already used with a different request"


class OrderStore:
    """OrderService's persistence. Methods block: call them from a worker thread."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def place(
        self, request: orders_pb2.PlaceOrderRequest, total_minor: int, fingerprint: str
    ) -> tuple[orders_pb2.Order, bool]:
        """Create the order for `request.idempotency_key`, or return the one already there.
        Returns (order, replayed)."""

        def work(conn: Connection) -> tuple[orders_pb2.Order, bool]:
            found = conn.execute(
                select(orders).where(orders.c.idempotency_key == request.idempotency_key)
            ).first()
            if found is not None:
                if found.request_fingerprint != fingerprint:
                    raise FailedPrecondition(REUSED_KEY)
                return _order(conn, found), True
            now = now_us()
            values = {
                "order_id": "ord_" + secrets.token_hex(12),
                "idempotency_key": request.idempotency_key,
                "request_fingerprint": fingerprint,
                "unified_id": request.unified_id,
                "currency_code": request.currency_code,
                "total_minor": total_minor,
                "refunded_minor": 0,
                "status": STATUS.Name(STATUS.ORDER_STATUS_CAPTURED),
                "line_items": [
                    {
                        "sku": li.sku,
                        "quantity": li.quantity,
                        "unit_price_minor": li.unit_price_minor,
                    }
                    for li in request.line_items
                ],
                "attribution": _attribution_json(request),
                "created_us": now,
                "updated_us": now,
            }
            conn.execute(insert(orders).values(**values))
            row = conn.execute(select(orders).where(orders.c.order_id == values["order_id"])).one()
            return _order(conn, row), False

        return self._db.run(work, write=True, retry_on_conflict=True)

    def get(self, order_id: str) -> orders_pb2.Order:
        def work(conn: Connection) -> orders_pb2.Order:
            row = conn.execute(select(orders).where(orders.c.order_id == order_id)).first()
            if row is None:
                raise NotFound(f"order {order_id} does not exist")
            return _order(conn, row)

        return self._db.run(work, write=False)

    def refund(
        self, request: orders_pb2.RefundOrderRequest, fingerprint: str
    ) -> tuple[orders_pb2.Order, orders_pb2.Refund, bool]:
        """Refund part of an order exactly once per (order, idempotency key)."""

        def work(conn: Connection) -> tuple[orders_pb2.Order, orders_pb2.Refund, bool]:
            order = conn.execute(
                select(orders).where(orders.c.order_id == request.order_id).with_for_update()
            ).first()
            if order is None:
                raise NotFound(f"order {request.order_id} does not exist")
            previous = conn.execute(
                select(refunds).where(
                    refunds.c.order_id == request.order_id,
                    refunds.c.idempotency_key == request.idempotency_key,
                )
            ).first()
            if previous is not None:
                if previous.request_fingerprint != fingerprint:
                    raise FailedPrecondition(REUSED_KEY)
                return _order(conn, order), _refund(previous, order.currency_code), True
            _check_refundable(order, request.amount)
            now = now_us()
            refunded = order.refunded_minor + request.amount.amount_minor
            status = (
                STATUS.ORDER_STATUS_REFUNDED
                if refunded == order.total_minor
                else STATUS.ORDER_STATUS_PARTIALLY_REFUNDED
            )
            refund_id = "ref_" + secrets.token_hex(12)
            conn.execute(
                insert(refunds).values(
                    refund_id=refund_id,
                    order_id=order.order_id,
                    idempotency_key=request.idempotency_key,
                    request_fingerprint=fingerprint,
                    amount_minor=request.amount.amount_minor,
                    reason=request.reason,
                    created_us=now,
                )
            )
            conn.execute(
                update(orders)
                .where(orders.c.order_id == order.order_id)
                .values(refunded_minor=refunded, status=STATUS.Name(status), updated_us=now)
            )
            fresh = conn.execute(select(orders).where(orders.c.order_id == order.order_id)).one()
            made = conn.execute(select(refunds).where(refunds.c.refund_id == refund_id)).one()
            return _order(conn, fresh), _refund(made, order.currency_code), False

        return self._db.run(work, write=True, retry_on_conflict=True)


def _check_refundable(order: Row[Any], amount: common_pb2.Money) -> None:
    if amount.currency_code != order.currency_code:
        raise InvalidArgument.field(
            "amount.currency_code",
            f"{amount.currency_code} does not match the order currency {order.currency_code}",
        )
    left = order.total_minor - order.refunded_minor
    if amount.amount_minor > left:
        raise FailedPrecondition(
            f"refund of {amount.amount_minor} exceeds what is left to refund: {left} of "
            f"{order.total_minor} {order.currency_code} captured"
        )


def _attribution_json(request: orders_pb2.PlaceOrderRequest) -> dict[str, str] | None:
    if not request.HasField("attribution"):
        return None
    a = request.attribution
    return {"rank_request_id": a.rank_request_id, "ad_id": a.ad_id, "campaign_id": a.campaign_id}


def _order(conn: Connection, row: Row[Any]) -> orders_pb2.Order:
    currency = row.currency_code
    rows = conn.execute(
        select(refunds).where(refunds.c.order_id == row.order_id).order_by(refunds.c.created_us)
    ).all()
    order = orders_pb2.Order(
        order_id=row.order_id,
        unified_id=row.unified_id,
        line_items=[orders_pb2.LineItem(**li) for li in row.line_items],
        total=common_pb2.Money(currency_code=currency, amount_minor=row.total_minor),
        refunded=common_pb2.Money(currency_code=currency, amount_minor=row.refunded_minor),
        status=STATUS.Value(row.status),
        refunds=[_refund(r, currency) for r in rows],
        create_time=to_timestamp(row.created_us),
        update_time=to_timestamp(row.updated_us),
    )
    if row.attribution:
        order.attribution.CopyFrom(orders_pb2.Attribution(**row.attribution))
    return order


def _refund(row: Row[Any], currency: str) -> orders_pb2.Refund:
    return orders_pb2.Refund(
        refund_id=row.refund_id,
        amount=common_pb2.Money(currency_code=currency, amount_minor=row.amount_minor),
        reason=row.reason,
        create_time=to_timestamp(row.created_us),
    )
