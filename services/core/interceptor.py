"""The one server interceptor: trace span, caller identity, and domain error -> gRPC status.

Every isthmus server installs exactly this interceptor, so no servicer calls `context.abort`
for domain errors and no two services map errors differently.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import trace

from services.core.config import CallerPolicy
from services.core.errors import to_status
from services.core.identity import (
    CALLER_HEADER,
    bind_caller,
    peer_names_from_auth_context,
    resolve_caller,
    unbind_caller,
)
from services.core.telemetry import Telemetry

log = logging.getLogger(__name__)

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps every handler of a server in `call_scope`."""

    def __init__(self, telemetry: Telemetry, caller_policy: CallerPolicy) -> None:
        self._telemetry = telemetry
        self._caller_policy = caller_policy
        # method -> (handler, its wrapper): servers hand out the same handler object per
        # method, so wrapping once saves building handlers on every call. Only methods a
        # handler exists for get here, so the cache is bounded by the server's methods.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: gRPC answers UNIMPLEMENTED itself
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    @contextlib.asynccontextmanager
    async def call_scope(
        self, method: str, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[None]:
        """Run one call inside its span with its caller bound; turn errors into statuses."""
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        record = self._telemetry.start_call(method, metadata, context.peer())
        caller = resolve_caller(
            peer_names_from_auth_context(context.auth_context()),
            metadata.get(CALLER_HEADER),
            self._caller_policy,
            context.peer(),
        )
        token = bind_caller(caller)
        code: grpc.StatusCode | None = None
        message = ""
        try:
            with trace.use_span(record.span, end_on_exit=False):
                yield
        except grpc.aio.AbortError:  # the handler aborted on its own
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:
            reply = to_status(exc)
            code, message = reply.code, reply.message
            if code is grpc.StatusCode.INTERNAL:
                _log_unexpected(method, exc, record.span)
            await context.abort(code, message, reply.trailing_metadata)
        finally:
            if code is None:
                code = context.code() or grpc.StatusCode.OK
            self._telemetry.end_call(record, code, message)
            unbind_caller(token)

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary_response(handler.unary_unary, method), **kwargs
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary_response(handler.stream_unary, method), **kwargs
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream_response(handler.unary_stream, method), **kwargs
            )
        return grpc.stream_stream_rpc_method_handler(
            self._stream_response(handler.stream_stream, method), **kwargs
        )

    def _unary_response(
        self, behavior: Callable[..., Awaitable[Any]], method: str
    ) -> Callable[..., Awaitable[Any]]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with self.call_scope(method, context):
                return await behavior(request, context)
            raise AssertionError("unreachable: call_scope re-raises or aborts")  # pragma: no cover

        return wrapped

    def _stream_response(
        self, behavior: Callable[..., Any], method: str
    ) -> Callable[..., AsyncIterator[Any]]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with self.call_scope(method, context):
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:  # a coroutine that writes with context.write()
                    await result

        return wrapped


def _log_unexpected(method: str, exc: BaseException, span: trace.Span) -> None:
    """Log a bug without its message: exception texts can carry request values (PII)."""
    trace_id = format(span.get_span_context().trace_id, "032x")
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unhandled %s in %s (trace_id=%s)\n%s", type(exc).__name__, method, trace_id, frames)
