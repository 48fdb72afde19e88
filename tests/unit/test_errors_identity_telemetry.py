"""Pure parts of the server foundation: status mapping, caller resolution, span attributes."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from services.core.config import CallerPolicy
from services.core.errors import (
    INTERNAL_MESSAGE,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    to_status,
)
from services.core.identity import CallerSource, resolve_caller
from services.core.telemetry import end_attributes, peer_attributes, span_name


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (ResourceExhausted("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (KeyError("secret"), grpc.StatusCode.INTERNAL),
    ],
)
def test_to_status_codes(exc: BaseException, code: grpc.StatusCode) -> None:
    assert to_status(exc).code is code


def test_unexpected_errors_never_echo_their_text() -> None:
    reply = to_status(ValueError("phone +4915112345678 invalid"))
    assert reply.message == INTERNAL_MESSAGE
    assert reply.trailing_metadata == ()


def test_invalid_argument_details_roundtrip() -> None:
    exc = InvalidArgument([FieldViolation("a", "bad"), FieldViolation("b.c", "worse")])
    reply = to_status(exc)
    assert reply.message == "a: bad; b.c: worse"
    ((key, blob),) = reply.trailing_metadata
    assert key == "grpc-status-details-bin"
    status = status_pb2.Status.FromString(blob)  # type: ignore[arg-type]
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    detail = error_details_pb2.BadRequest()
    status.details[0].Unpack(detail)
    assert [(v.field, v.description) for v in detail.field_violations] == [
        ("a", "bad"),
        ("b.c", "worse"),
    ]


def test_invalid_argument_needs_a_violation() -> None:
    with pytest.raises(ValueError, match="at least one"):
        InvalidArgument([])


POLICY = CallerPolicy(trusted_forwarders=frozenset({"isthmus-gateway"}))


@pytest.mark.parametrize(
    ("peers", "header", "policy", "expected"),
    [
        (["isthmus-gateway"], "checkout", POLICY, ("checkout", CallerSource.FORWARDED)),
        (["isthmus-gateway"], None, POLICY, ("isthmus-gateway", CallerSource.CERTIFICATE)),
        (["reporting"], "checkout", POLICY, ("reporting", CallerSource.CERTIFICATE)),
        ([], "checkout", POLICY, ("anonymous", CallerSource.ANONYMOUS)),
        (
            [],
            "checkout",
            CallerPolicy(trust_header_without_tls=True),
            ("checkout", CallerSource.ASSERTED),
        ),
        # A malformed header is ignored, never echoed into audit records.
        (["isthmus-gateway"], "bad name\n", POLICY, ("isthmus-gateway", CallerSource.CERTIFICATE)),
    ],
)
def test_resolve_caller(
    peers: list[str], header: str | None, policy: CallerPolicy, expected: tuple[str, CallerSource]
) -> None:
    caller = resolve_caller(peers, header, policy)
    assert (caller.name, caller.source) == expected


def test_span_and_peer_attributes() -> None:
    assert span_name("/isthmus.ads.v1.AdService/Rank") == "isthmus.ads.v1.AdService/Rank"
    assert peer_attributes("ipv6:[::1]:5000") == {
        "network.peer.address": "::1",
        "network.peer.port": 5000,
    }
    assert peer_attributes("unix:/tmp/sock") == {}
    assert end_attributes(grpc.StatusCode.UNAVAILABLE) == {
        "rpc.response.status_code": "UNAVAILABLE",
        "error.type": "UNAVAILABLE",
    }
    assert end_attributes(grpc.StatusCode.INVALID_ARGUMENT) == {
        "rpc.response.status_code": "INVALID_ARGUMENT"
    }


def _telemetry_with_spans():  # type: ignore[no-untyped-def]
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from services.core.config import TelemetryConfig
    from services.core.telemetry import Telemetry

    spans = InMemorySpanExporter()
    return Telemetry.create(TelemetryConfig(), [SimpleSpanProcessor(spans)]), spans


@pytest.mark.parametrize(
    "traceparent",
    [
        "not-a-traceparent",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id is invalid
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent is invalid
    ],
)
def test_invalid_traceparent_starts_a_new_trace(traceparent: str) -> None:
    telemetry, spans = _telemetry_with_spans()
    record = telemetry.start_call("/a.B/C", {"traceparent": traceparent}, "ipv4:127.0.0.1:1")
    telemetry.end_call(record, grpc.StatusCode.OK)
    (span,) = spans.get_finished_spans()
    assert span.parent is None
    assert span.context.trace_id != 0


def test_valid_traceparent_and_tracestate_are_joined() -> None:
    telemetry, spans = _telemetry_with_spans()
    metadata = {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "vendor=opaque",
    }
    record = telemetry.start_call("/a.B/C", metadata, "ipv4:127.0.0.1:1")
    telemetry.end_call(record, grpc.StatusCode.INTERNAL, "boom")
    (span,) = spans.get_finished_spans()
    assert format(span.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.context.trace_state.get("vendor") == "opaque"
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "INTERNAL"


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("ipv4:10.77.1.1:40412", ("checkout", CallerSource.ASSERTED)),
        ("ipv4:10.77.1.9:40412", ("anonymous", CallerSource.ANONYMOUS)),
        ("ipv6:[fd00::1]:5000", ("checkout", CallerSource.ASSERTED)),
        ("ipv6:[fd00::2]:5000", ("anonymous", CallerSource.ANONYMOUS)),
        ("unix:/tmp/sock", ("anonymous", CallerSource.ANONYMOUS)),
        ("", ("anonymous", CallerSource.ANONYMOUS)),
    ],
)
def test_header_believed_only_from_a_trusted_peer_network(
    peer: str, expected: tuple[str, CallerSource]
) -> None:
    policy = CallerPolicy(trusted_peer_networks=("10.77.1.1/32", "fd00::1/128"))
    caller = resolve_caller([], "checkout", policy, peer)
    assert (caller.name, caller.source) == expected
