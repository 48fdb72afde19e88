"""Spans leave the process over OTLP/gRPC to a real (in-test) collector endpoint."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from isthmus.orders.v1 import orders_pb2, orders_pb2_grpc
from services.core.config import ServerConfig, TelemetryConfig, TracesExporter
from tests.integration.sample_services import orders_binding


class Collector(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.span_names: list[str] = []
        self.service_names: list[str] = []
        self.received = threading.Event()

    def Export(self, request, context):  # type: ignore[no-untyped-def]
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    self.service_names.append(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                self.span_names.extend(span.name for span in scope_spans.spans)
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()


def test_server_spans_are_exported_over_otlp(start_server, loop_thread) -> None:  # type: ignore[no-untyped-def]
    collector = Collector()
    otlp = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, otlp)
    otlp_port = otlp.add_insecure_port("127.0.0.1:0")
    otlp.start()
    try:
        telemetry = TelemetryConfig(
            service_name="orders-test",
            traces=TracesExporter.OTLP,
            otlp_endpoint=f"127.0.0.1:{otlp_port}",
        )
        server, port = start_server([orders_binding()], ServerConfig(telemetry=telemetry))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch, pytest.raises(grpc.RpcError):
            orders_pb2_grpc.OrderServiceStub(ch).GetOrder(orders_pb2.GetOrderRequest(order_id="z"))
        loop_thread.run(server.stop(0))  # flushes the batch processor
        assert collector.received.wait(15)
        assert collector.span_names == ["isthmus.orders.v1.OrderService/GetOrder"]
        assert collector.service_names == ["orders-test"]
    finally:
        otlp.stop(0)
