"""`isthmus serve events`: the EventService on the shared server foundation."""

from __future__ import annotations

from collections.abc import Callable

from isthmus.events.v1 import events_pb2_grpc
from services.core.blocking import BlockingPool
from services.core.server import Binding, Server, create_server, run_announced
from services.public.events.config import EventsConfig
from services.public.events.landing import LandingLog
from services.public.events.servicer import EventServicer

EVENT_SERVICE = "isthmus.events.v1.EventService"


def build_server(config: EventsConfig) -> tuple[Server, int, Callable[[], None]]:
    """The server and a cleanup that closes the landing log and the worker pool."""
    log = LandingLog(config.landing_dir)
    pool = BlockingPool(config.writer_threads, "events")
    key = config.pseudonym_check_key.read() if config.pseudonym_check_key else None
    servicer = EventServicer(log, pool, key)
    binding = Binding(
        EVENT_SERVICE, lambda s: events_pb2_grpc.add_EventServiceServicer_to_server(servicer, s)
    )
    server, port = create_server(config.server, [binding])

    def cleanup() -> None:
        pool.shutdown()
        log.close()

    return server, port, cleanup


def run(config: EventsConfig) -> int:
    return run_announced(lambda: build_server(config))
