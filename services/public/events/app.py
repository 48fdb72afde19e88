"""`isthmus serve events`: the EventService on the shared server foundation."""

from __future__ import annotations

import asyncio
from pathlib import Path

from isthmus.events.v1 import events_pb2_grpc
from services.core.blocking import BlockingPool
from services.core.config import ServerConfig
from services.core.server import Binding, Server, create_server, serve
from services.public.events.landing import LandingLog
from services.public.events.servicer import EventServicer

EVENT_SERVICE = "isthmus.events.v1.EventService"


def build_server(config: ServerConfig, landing_dir: Path) -> tuple[Server, int, LandingLog]:
    log = LandingLog(landing_dir)
    servicer = EventServicer(log, BlockingPool(4, "events"))
    binding = Binding(
        EVENT_SERVICE, lambda s: events_pb2_grpc.add_EventServiceServicer_to_server(servicer, s)
    )
    server, port = create_server(config, [binding])
    return server, port, log


def run(config: ServerConfig, landing_dir: Path) -> int:
    async def main() -> None:
        server, port, log = build_server(config, landing_dir)
        try:
            print(f"listening on {config.listen.host}:{port}", flush=True)
            await serve(server)
        finally:
            log.close()

    asyncio.run(main())
    return 0
