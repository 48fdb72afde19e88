"""Run blocking work (database calls) off the event loop, honouring the call's deadline."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import grpc

from services.core.errors import DeadlineExceeded

P = ParamSpec("P")
T = TypeVar("T")


class BlockingPool:
    """A bounded thread pool for one server's blocking calls.

    Context variables (such as the current caller) do not cross into the threads: read them
    in the handler and pass them as arguments, which also keeps the blocking code pure of
    request-scoped globals.
    """

    def __init__(self, threads: int, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(
        self,
        context: grpc.aio.ServicerContext,
        fn: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded("the call's deadline expired before its work started")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
