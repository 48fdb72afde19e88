"""Validation of OrderService requests (pure)."""

from __future__ import annotations

from isthmus.orders.v1 import orders_pb2
from services.core.money import MAX_AMOUNT_MINOR, currency_problem
from services.core.validation import Violations

MAX_LINES = 100
MAX_QUANTITY = 10_000


def validate_place(request: orders_pb2.PlaceOrderRequest) -> int:
    """Check a PlaceOrder request; returns the order total in minor units."""
    v = Violations()
    v.token("idempotency_key", request.idempotency_key, min_len=8, max_len=128)
    v.token("unified_id", request.unified_id, max_len=64)
    problem = currency_problem(request.currency_code)
    if problem:
        v.add("currency_code", problem)
    v.text("payment_token", request.payment_token, max_len=512)
    if not request.line_items:
        v.add("line_items", "at least one line item is required")
    elif len(request.line_items) > MAX_LINES:
        v.add("line_items", f"at most {MAX_LINES} line items (got {len(request.line_items)})")
    total = 0
    for i, line in enumerate(request.line_items[:MAX_LINES]):
        field = f"line_items[{i}]"
        v.token(f"{field}.sku", line.sku, max_len=64)
        if not 1 <= line.quantity <= MAX_QUANTITY:
            v.add(f"{field}.quantity", f"must be 1 to {MAX_QUANTITY} (got {line.quantity})")
        if line.unit_price_minor < 0:
            v.add(f"{field}.unit_price_minor", "must not be negative")
        elif line.unit_price_minor > MAX_AMOUNT_MINOR:
            v.add(f"{field}.unit_price_minor", f"must be at most {MAX_AMOUNT_MINOR}")
        else:
            total += line.quantity * line.unit_price_minor
    if total > MAX_AMOUNT_MINOR:
        v.add("line_items", f"order total exceeds {MAX_AMOUNT_MINOR} minor units")
    attribution = request.attribution
    v.token("attribution.rank_request_id", attribution.rank_request_id, required=False, max_len=128)
    v.token("attribution.ad_id", attribution.ad_id, required=False, max_len=128)
    v.token("attribution.campaign_id", attribution.campaign_id, required=False, max_len=128)
    v.raise_if_any()
    return total


def validate_refund(request: orders_pb2.RefundOrderRequest) -> None:
    v = Violations()
    v.token("order_id", request.order_id, max_len=40)
    v.token("idempotency_key", request.idempotency_key, min_len=8, max_len=128)
    if not request.HasField("amount"):
        v.add("amount", "is required")
    else:
        problem = currency_problem(request.amount.currency_code)
        if problem:
            v.add("amount.currency_code", problem)
        if request.amount.amount_minor <= 0:
            v.add("amount.amount_minor", "must be greater than 0")
        elif request.amount.amount_minor > MAX_AMOUNT_MINOR:
            v.add("amount.amount_minor", f"must be at most {MAX_AMOUNT_MINOR}")
    v.text("reason", request.reason, max_len=500)
    v.raise_if_any()


def validate_get(request: orders_pb2.GetOrderRequest) -> None:
    v = Violations()
    v.token("order_id", request.order_id, max_len=40)
    v.raise_if_any()
