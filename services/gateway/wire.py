"""What the proxy does to the wire around a call: which metadata goes upstream (and which
never does), the CLIENT span of an attempt and its W3C trace context, and ending the caller's
call exactly as the upstream one ended."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from services.contract.descriptors import MethodInfo

Metadata = Sequence[tuple[str, str | bytes]]
# Not forwarded upstream: transport headers gRPC sets itself, the caller's credentials, and
# headers the gateway owns (caller identity, trace context).
_DROP = frozenset(
    {
        "user-agent",
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        "content-type",
        "te",
        "authorization",
        "x-isthmus-caller",
        "traceparent",
        "tracestate",
    }
)


@dataclass(slots=True)
class Reply:
    """How one attempt ended."""

    code: grpc.StatusCode
    details: str = ""
    initial: Metadata = ()
    trailing: Metadata = ()
    message: bytes | None = None  # unary response
    messages_sent: int = 0  # streaming: responses already forwarded (no retry after the first)


def client_span(tracer: trace.Tracer, method: MethodInfo, address: str) -> trace.Span:
    """The CLIENT span of one attempt (current RPC semantic conventions)."""
    host, _, port = address.rpartition(":")
    name = method.path[1:]
    return tracer.start_span(
        name,
        kind=SpanKind.CLIENT,
        attributes={
            "rpc.system.name": "grpc",
            "rpc.method": name,
            "server.address": host,
            "server.port": int(port),
        },
    )


def end_span(span: trace.Span, code: grpc.StatusCode) -> None:
    if not span.is_recording():  # sampled out: nothing to annotate
        span.end()
        return
    span.set_attribute("rpc.response.status_code", code.name)
    if code is not grpc.StatusCode.OK:
        span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
    span.end()


def clean(metadata: Any) -> Metadata:
    if not metadata:
        return ()
    return tuple((k, v) for k, v in metadata if k not in _DROP and not k.startswith(":"))


def upstream_metadata(context: grpc.aio.ServicerContext, caller: str, span: trace.Span) -> Metadata:
    """The caller's metadata minus what it may not set, plus the caller's name and the W3C
    trace context of the attempt's span (also when sampled out: the trace id still flows)."""
    forwarded = list(clean(context.invocation_metadata()))
    forwarded.append(("x-isthmus-caller", caller))
    ctx = span.get_span_context()
    if ctx.is_valid:
        forwarded.append(
            ("traceparent", f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}")
        )
        if ctx.trace_state:
            forwarded.append(("tracestate", ctx.trace_state.to_header()))
    return tuple(forwarded)


async def finish(context: grpc.aio.ServicerContext, reply: Reply) -> None:
    """End the downstream call exactly as the upstream one ended."""
    if reply.code is grpc.StatusCode.OK:
        if reply.trailing:
            context.set_trailing_metadata(reply.trailing)
        return
    await context.abort(reply.code, reply.details, reply.trailing)
