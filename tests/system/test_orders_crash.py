"""kill -9 of the order server in the middle of a load: every acknowledged order survives,
exactly once, and retrying the calls that got no answer creates no duplicates."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
from sqlalchemy import func, select

from isthmus.orders.v1 import orders_pb2, orders_pb2_grpc
from services.private.db.engine import Database
from services.private.db.tables import orders
from tests.support.processes import start_private_server


def request(key: str) -> orders_pb2.PlaceOrderRequest:
    return orders_pb2.PlaceOrderRequest(
        idempotency_key=key,
        unified_id="u_crash",
        currency_code="EUR",
        line_items=[orders_pb2.LineItem(sku="sku-1", quantity=1, unit_price_minor=100)],
        payment_token="tok",
    )


def test_acknowledged_orders_survive_kill_9(tmp_path: Path, database_url: str) -> None:
    proc, port = start_private_server(tmp_path, database_url)
    acknowledged: dict[str, str] = {}
    attempted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = orders_pb2_grpc.OrderServiceStub(channel)
            for i in range(10_000):
                if stop.is_set():
                    return
                key = f"crash-{worker:02d}-{i:05d}"
                with lock:
                    attempted.append(key)
                try:
                    reply = stub.PlaceOrder(request(key), timeout=5)
                except grpc.RpcError:
                    return  # the server died under us: this key is in doubt
                with lock:
                    acknowledged[key] = reply.order.order_id

    workers = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        stop.set()
        for w in workers:
            w.join(30)
        if proc.poll() is None:
            proc.kill()
    assert len(acknowledged) >= 200

    proc, port = start_private_server(tmp_path, database_url)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = orders_pb2_grpc.OrderServiceStub(channel)
            for key, order_id in acknowledged.items():
                got = stub.GetOrder(orders_pb2.GetOrderRequest(order_id=order_id), timeout=10)
                assert got.order.order_id == order_id, key
            # Retry every attempted call, as a client with the same keys would.
            for key in attempted:
                reply = stub.PlaceOrder(request(key), timeout=10)
                if key in acknowledged:
                    assert reply.replayed
                    assert reply.order.order_id == acknowledged[key]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0

    db = Database(database_url)
    try:
        with db.engine.connect() as conn:
            per_key = conn.execute(
                select(orders.c.idempotency_key, func.count()).group_by(orders.c.idempotency_key)
            ).all()
    finally:
        db.dispose()
    counts = dict(per_key)
    assert set(counts) == set(attempted)
    assert set(counts.values()) == {1}
