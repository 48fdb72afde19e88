"""The shared server foundation, against real servers on 127.0.0.1:0 and real gRPC clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from isthmus.orders.v1 import orders_pb2, orders_pb2_grpc
from services.core.config import CallerPolicy, ServerConfig, TelemetryConfig
from services.core.errors import INTERNAL_MESSAGE
from services.core.telemetry import Telemetry
from tests.integration.sample_services import ECHO_SERVICE, SECRET, echo_binding, orders_binding

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


def wait_for(probe, timeout_s: float = 10.0):  # type: ignore[no-untyped-def]
    """Poll `probe` until it returns something truthy (bounded); return that."""
    deadline = time.monotonic() + timeout_s
    while not (result := probe()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return result


@pytest.fixture
def telemetry() -> tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    metrics = InMemoryMetricReader()
    return (
        Telemetry.create(TelemetryConfig(), [SimpleSpanProcessor(spans)], [metrics]),
        spans,
        metrics,
    )


@pytest.fixture
def channel(start_server, telemetry) -> Iterator[grpc.Channel]:  # type: ignore[no-untyped-def]
    _, port = start_server([orders_binding(), echo_binding()], telemetry=telemetry[0])
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch


def test_domain_error_becomes_its_status(channel: grpc.Channel) -> None:
    stub = orders_pb2_grpc.OrderServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.GetOrder(orders_pb2.GetOrderRequest(order_id="o-404"))
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "order o-404 does not exist"


def test_invalid_argument_names_every_field_and_carries_bad_request(channel: grpc.Channel) -> None:
    stub = orders_pb2_grpc.OrderServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.PlaceOrder(orders_pb2.PlaceOrderRequest(idempotency_key="k-12345678"))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == (
        "line_items: at least one line item is required; "
        "currency_code: must be a 3-letter ISO 4217 code"
    )
    status = rpc_status.from_call(err.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == ["line_items", "currency_code"]


def test_unexpected_exception_is_internal_without_its_text(
    channel: grpc.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    stub = orders_pb2_grpc.OrderServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.PlaceOrder(orders_pb2.PlaceOrderRequest(idempotency_key="crash"))
    assert err.value.code() is grpc.StatusCode.INTERNAL
    assert err.value.details() == INTERNAL_MESSAGE
    assert "RuntimeError" in caplog.text
    assert SECRET not in caplog.text
    # The server is still up.
    with pytest.raises(grpc.RpcError) as again:
        stub.GetOrder(orders_pb2.GetOrderRequest(order_id="x"))
    assert again.value.code() is grpc.StatusCode.NOT_FOUND


def test_handler_abort_passes_through(channel: grpc.Channel) -> None:
    stub = orders_pb2_grpc.OrderServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.GetOrder(orders_pb2.GetOrderRequest(order_id="self-abort"))
    assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS


def test_unknown_method_is_unimplemented(channel: grpc.Channel) -> None:
    call = channel.unary_unary("/isthmus.orders.v1.OrderService/Nope")
    with pytest.raises(grpc.RpcError) as err:
        call(b"")
    assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_all_four_call_types_and_streaming_errors(channel: grpc.Channel) -> None:
    listing = channel.unary_stream(f"/{ECHO_SERVICE}/List")
    assert list(listing(b"2")) == [b"item-0", b"item-1"]
    with pytest.raises(grpc.RpcError) as err:
        list(listing(b"0"))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "count: must be positive"

    join = channel.stream_unary(f"/{ECHO_SERVICE}/Join")
    assert join(iter([b"a", b"b"])) == b"ab"
    with pytest.raises(grpc.RpcError) as err:
        join(iter([b"a", b"bad"]))
    assert err.value.details() == "chunks[1]: is bad"

    shout = channel.stream_stream(f"/{ECHO_SERVICE}/Shout")
    assert list(shout(iter([b"x", b"y"]))) == [b"X", b"Y"]


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "isthmus.orders.v1.OrderService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as err:
        health.Check(health_pb2.HealthCheckRequest(service="no.Such"))
    assert err.value.code() is grpc.StatusCode.NOT_FOUND

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for s in next(replies).list_services_response.service}
    assert {"isthmus.orders.v1.OrderService", "grpc.health.v1.Health"} <= names
    assert ECHO_SERVICE not in names  # no descriptor to offer, so not advertised


def test_server_span_joins_the_callers_trace(channel: grpc.Channel, telemetry) -> None:  # type: ignore[no-untyped-def]
    _, spans, metrics = telemetry
    stub = orders_pb2_grpc.OrderServiceStub(channel)
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
    with pytest.raises(grpc.RpcError):
        stub.GetOrder(
            orders_pb2.GetOrderRequest(order_id="a"), metadata=[("traceparent", traceparent)]
        )
    # The server closes its span just after the status is on the wire: wait for it.
    (span,) = wait_for(spans.get_finished_spans)
    assert span.name == "isthmus.orders.v1.OrderService/GetOrder"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert span.attributes["rpc.system.name"] == "grpc"
    assert span.attributes["rpc.response.status_code"] == "NOT_FOUND"
    assert span.attributes["network.peer.address"] == "127.0.0.1"
    assert "error.type" not in span.attributes  # NOT_FOUND is the caller's problem, not ours

    data = metrics.get_metrics_data()
    points = [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "rpc.server.call.duration" and metric.unit == "s"
        for point in metric.data.data_points
    ]
    assert [p.attributes["rpc.response.status_code"] for p in points] == ["NOT_FOUND"]
    assert points[0].count == 1
    assert 0 < points[0].sum < 5


def test_oversized_message_is_resource_exhausted(start_server) -> None:  # type: ignore[no-untyped-def]
    _, port = start_server([orders_binding()], ServerConfig(max_receive_message_bytes=4096))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = orders_pb2_grpc.OrderServiceStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetOrder(orders_pb2.GetOrderRequest(order_id="x" * 10_000))
        assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        # A normal call still works afterwards.
        with pytest.raises(grpc.RpcError) as ok:
            stub.GetOrder(orders_pb2.GetOrderRequest(order_id="small"))
        assert ok.value.code() is grpc.StatusCode.NOT_FOUND


def test_caller_header_believed_only_when_policy_says_so(start_server) -> None:  # type: ignore[no-untyped-def]
    _, strict_port = start_server([orders_binding()])
    _, local_port = start_server(
        [orders_binding()], ServerConfig(caller=CallerPolicy(trust_header_without_tls=True))
    )
    request = orders_pb2.RefundOrderRequest(order_id="o")
    metadata = [("x-isthmus-caller", "checkout")]
    with grpc.insecure_channel(f"127.0.0.1:{strict_port}") as ch:
        reply = orders_pb2_grpc.OrderServiceStub(ch).RefundOrder(request, metadata=metadata)
        assert reply.refund.reason == "anonymous|anonymous"
    with grpc.insecure_channel(f"127.0.0.1:{local_port}") as ch:
        reply = orders_pb2_grpc.OrderServiceStub(ch).RefundOrder(request, metadata=metadata)
        assert reply.refund.reason == "checkout|asserted"


def test_stop_lets_in_flight_calls_finish_and_flips_health(start_server, loop_thread) -> None:  # type: ignore[no-untyped-def]
    server, port = start_server([orders_binding()])
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = orders_pb2_grpc.OrderServiceStub(ch)
        result: dict[str, object] = {}

        def slow_call() -> None:
            result["reply"] = stub.GetOrder(orders_pb2.GetOrderRequest(order_id="slow-0.8"))

        worker = threading.Thread(target=slow_call)
        worker.start()
        time.sleep(0.3)  # let the call reach the handler
        loop_thread.run(server.stop(5))
        worker.join(10)
        assert result["reply"].order.order_id == "slow-0.8"  # type: ignore[attr-defined]
    status = loop_thread.run(server.health.Check(health_pb2.HealthCheckRequest(service=""), None))
    assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_prometheus_endpoint_serves_the_duration_histogram(start_server) -> None:  # type: ignore[no-untyped-def]
    import socket
    import urllib.request

    from services.core.config import MetricsExporter
    from services.topology.model import Endpoint

    with socket.socket() as probe:  # a free port for /metrics
        probe.bind(("127.0.0.1", 0))
        metrics_port = probe.getsockname()[1]
    telemetry_config = TelemetryConfig(
        metrics=MetricsExporter.PROMETHEUS,
        prometheus_listen=Endpoint(host="127.0.0.1", port=metrics_port),
    )
    _, port = start_server([orders_binding()], ServerConfig(telemetry=telemetry_config))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch, pytest.raises(grpc.RpcError):
        orders_pb2_grpc.OrderServiceStub(ch).GetOrder(orders_pb2.GetOrderRequest(order_id="p"))
    url = f"http://127.0.0.1:{metrics_port}/metrics"

    def scrape() -> list[str]:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
        return [
            line
            for line in body.splitlines()
            if line.startswith("rpc_server_call_duration_seconds_count")
        ]

    bucket_lines = wait_for(scrape)
    assert len(bucket_lines) == 1
    assert 'rpc_method="isthmus.orders.v1.OrderService/GetOrder"' in bucket_lines[0]
    assert 'rpc_response_status_code="NOT_FOUND"' in bucket_lines[0]
    assert bucket_lines[0].endswith(" 1.0")
