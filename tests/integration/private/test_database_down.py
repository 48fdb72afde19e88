"""The local platform's PostgreSQL (services/local/database.py) and what the private zone
does when it goes away: a real server prepared and run exactly as `isthmus up` runs it,
stopped hard (SIGQUIT: `pg_ctl stop -m immediate`), started again.

While it is down, OrderService answers UNAVAILABLE with a message that says so (not
INTERNAL, not a hang), the process stays up, and after the restart the order acknowledged
before the stop is still there and the same idempotency key replays it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from isthmus.orders.v1 import orders_pb2, orders_pb2_grpc
from services.core.server import free_port
from services.local import database
from services.private.app import build_server
from tests.integration.private.conftest import private_config
from tests.integration.private.test_orders import place_request

try:
    database.find_bin_dir()
except RuntimeError as exc:  # pragma: no cover - setup installs the server
    pytest.skip(str(exc), allow_module_level=True)


class Server:
    """The postmaster as the supervisor runs it: the layout's argv, its log to a file."""

    def __init__(self, layout: database.PostgresLayout, log: Path) -> None:
        self.layout, self.log = layout, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.layout.server_argv(), stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while database.READY_MARKER not in self.log.read_text()[offset:]:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "PostgreSQL did not get ready in 60 s"
            time.sleep(0.1)

    def stop_hard(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGQUIT)  # what `pg_ctl stop -m immediate` sends
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            self.proc.wait(timeout=30)


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Server]:
    layout = database.locate(tmp_path / "private", "127.0.0.1", free_port())
    database.prepare(layout)
    database.prepare(layout)  # idempotent: a second `up` finds the cluster ready
    server = Server(layout, tmp_path / "postgres.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        database.remove(layout)


def test_only_the_isthmus_role_gets_in_and_the_password_is_nowhere_in_config(
    postgres: Server,
) -> None:
    layout = postgres.layout
    password = layout.password_file.read_text().strip()
    assert password not in layout.url()
    assert password not in layout.observer_url()
    assert oct(layout.passfile.stat().st_mode & 0o777) == "0o600"
    for url in (layout.url(), layout.observer_url()):
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar_one() == "isthmus"
        engine.dispose()
    # The superuser cannot log in over TCP at all, and a wrong password is refused.
    for url in (
        f"postgresql+psycopg://postgres@127.0.0.1:{layout.port}/postgres?connect_timeout=3",
        f"postgresql+psycopg://isthmus:wrong@127.0.0.1:{layout.port}/isthmus?connect_timeout=3",
    ):
        engine = sa.create_engine(url)
        with pytest.raises(sa.exc.OperationalError), engine.connect():
            pass
        engine.dispose()
    assert password not in postgres.log.read_text()


def test_orders_fail_unavailable_while_the_database_is_down_and_nothing_is_lost(
    postgres: Server, loop_thread: Any, tmp_path: Path
) -> None:
    config = private_config(tmp_path, postgres.layout.url())

    async def start() -> Any:
        server, port, runtime = build_server(config, ["orders"])
        await server.start()
        return server, port, runtime

    server, port, runtime = loop_thread.run(start())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = orders_pb2_grpc.OrderServiceStub(channel)
    try:
        placed = stub.PlaceOrder(place_request("key-before-stop"), timeout=10)

        postgres.stop_hard()
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as failed:
            stub.PlaceOrder(place_request("key-during-outage"), timeout=10)
        assert failed.value.code() is grpc.StatusCode.UNAVAILABLE, failed.value.details()
        assert "database is unavailable" in (failed.value.details() or "")
        assert time.monotonic() - started < 5  # fails fast, not at the caller's deadline
        with pytest.raises(grpc.RpcError) as read:
            stub.GetOrder(orders_pb2.GetOrderRequest(order_id=placed.order.order_id), timeout=10)
        assert read.value.code() is grpc.StatusCode.UNAVAILABLE

        postgres.start()  # crash recovery replays the WAL
        replay = stub.PlaceOrder(place_request("key-before-stop"), timeout=10)
        assert replay.order.order_id == placed.order.order_id
        after = stub.PlaceOrder(place_request("key-during-outage"), timeout=10)
        assert after.order.order_id != placed.order.order_id
        engine = sa.create_engine(postgres.layout.observer_url())
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT idempotency_key, count(*) FROM orders GROUP BY idempotency_key"
            ).fetchall()
        engine.dispose()
        assert dict(rows) == {"key-before-stop": 1, "key-during-outage": 1}
    finally:
        channel.close()
        loop_thread.run(server.stop(0))
        runtime.close()
