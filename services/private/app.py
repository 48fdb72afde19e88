"""Wiring of the private zone's servers: config -> database, keys, servicers -> gRPC server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from isthmus.orders.v1 import orders_pb2_grpc
from services.core.blocking import BlockingPool
from services.core.server import Binding, Server, create_server
from services.private.config import PrivateZoneConfig, keys_of
from services.private.db import migrate
from services.private.db.engine import Database
from services.private.keys import Keys
from services.private.orders.servicer import OrderServicer
from services.private.orders.store import OrderStore

ORDER_SERVICE = "isthmus.orders.v1.OrderService"
PROFILE_SERVICE = "isthmus.profile.v1.ProfileService"


@dataclass
class PrivateRuntime:
    """What a private-zone server owns besides the gRPC server; closed after it stops."""

    db: Database
    keys: Keys
    pool: BlockingPool

    def close(self) -> None:
        self.pool.shutdown()
        self.db.dispose()


def open_runtime(config: PrivateZoneConfig, name: str) -> PrivateRuntime:
    """Open the database (migrating it to the newest schema) and load the keys."""
    db = Database(config.resolved_database_url())
    migrate.upgrade(db)
    keys = keys_of(config)
    return PrivateRuntime(db, keys, BlockingPool(config.db_threads, name))


def orders_binding(runtime: PrivateRuntime) -> Binding:
    servicer = OrderServicer(OrderStore(runtime.db), runtime.keys, runtime.pool)
    return Binding(
        ORDER_SERVICE, lambda s: orders_pb2_grpc.add_OrderServiceServicer_to_server(servicer, s)
    )


def profile_binding(runtime: PrivateRuntime) -> Binding:
    from isthmus.profile.v1 import profile_pb2_grpc
    from services.private.profile.servicer import ProfileServicer
    from services.private.profile.store import ProfileStore

    servicer = ProfileServicer(ProfileStore(runtime.db, runtime.keys), runtime.pool)
    return Binding(
        PROFILE_SERVICE,
        lambda s: profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, s),
    )


BINDINGS: dict[str, Callable[[PrivateRuntime], Binding]] = {
    "orders": orders_binding,
    "profile": profile_binding,
}


def build_server(
    config: PrivateZoneConfig, services: list[str]
) -> tuple[Server, int, PrivateRuntime]:
    """A server for the named private services ("orders", "profile") on one port."""
    unknown = sorted(set(services) - set(BINDINGS))
    if unknown:
        raise ValueError(f"unknown private service(s): {', '.join(unknown)}")
    runtime = open_runtime(config, "-".join(services))
    server, port = create_server(config.server, [BINDINGS[name](runtime) for name in services])
    return server, port, runtime
