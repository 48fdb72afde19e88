"""Integration fixtures: real aio servers on 127.0.0.1:0, hosted on a background event loop so
tests can use plain synchronous gRPC clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import pytest

from services.core.config import ServerConfig
from services.core.server import Binding, Server, create_server
from services.core.telemetry import Telemetry


class LoopThread:
    """An asyncio loop in a daemon thread; `run(coro)` waits for a result from it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


ServerFactory = Callable[..., Any]


@pytest.fixture
def start_server(loop_thread: LoopThread) -> Iterator[ServerFactory]:
    """start_server(bindings, config=None, telemetry=None) -> (Server, port); stopped at exit."""
    started: list[Server] = []

    def start(
        bindings: Sequence[Binding],
        config: ServerConfig | None = None,
        telemetry: Telemetry | None = None,
    ) -> tuple[Server, int]:
        async def build() -> tuple[Server, int]:
            server, port = create_server(config or ServerConfig(), bindings, telemetry)
            await server.start()
            return server, port

        server, port = loop_thread.run(build())
        started.append(server)
        return server, port

    yield start
    for server in started:
        loop_thread.run(server.stop(0))
