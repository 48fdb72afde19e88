"""OpenTelemetry for gRPC servers: spans joined to the caller's W3C trace context, and the
`rpc.server.call.duration` histogram, following the current RPC semantic conventions
(`rpc.system.name`, full `rpc.method`, string `rpc.response.status_code`, seconds).

Providers are owned by a `Telemetry` object rather than set globally, so several servers (and
tests with in-memory exporters) can live in one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import grpc
from opentelemetry.context import Context
from opentelemetry.metrics import Histogram, Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.core.config import MetricsExporter, TelemetryConfig, TracesExporter

# Semantic-convention bucket boundaries for RPC durations, in seconds.
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
# Server spans are errors only for these codes; the rest are the caller's problem.
SERVER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_PROPAGATOR = TraceContextTextMapPropagator()


def span_name(method_path: str) -> str:
    """ "/pkg.Service/Method" -> "pkg.Service/Method" (the `rpc.method` value)."""
    return method_path.lstrip("/")


def peer_attributes(peer: str) -> dict[str, str | int]:
    """Parse gRPC's peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000") into attributes."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return {}
    host, _, port = rest.rpartition(":")
    attributes: dict[str, str | int] = {"network.peer.address": host.strip("[]")}
    if port.isdigit():
        attributes["network.peer.port"] = int(port)
    return attributes


def end_attributes(code: grpc.StatusCode) -> dict[str, str]:
    attributes = {"rpc.response.status_code": code.name}
    if code in SERVER_ERROR_CODES:
        attributes["error.type"] = code.name
    return attributes


@dataclass(slots=True)
class CallRecord:
    """The open span and start time of one server call."""

    span: Span
    method: str
    started_s: float


class Telemetry:
    """Tracer and meter for one server, plus the instruments the interceptor records."""

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        closers: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._closers = list(closers)
        self.tracer = tracer_provider.get_tracer("isthmus.services.core")
        self.meter: Meter = meter_provider.get_meter("isthmus.services.core")
        self.server_duration: Histogram = self.meter.create_histogram(
            "rpc.server.call.duration",
            unit="s",
            description="Duration of RPCs handled by this server.",
        )

    def start_call(self, method_path: str, metadata: Mapping[str, str], peer: str) -> CallRecord:
        """Open the SERVER span, child of the caller's `traceparent` when there is one."""
        parent: Context = _PROPAGATOR.extract(carrier=dict(metadata))
        method = span_name(method_path)
        attributes: dict[str, str | int] = {"rpc.system.name": "grpc", "rpc.method": method}
        attributes.update(peer_attributes(peer))
        span = self.tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        return CallRecord(span, method, time.perf_counter())

    def end_call(self, record: CallRecord, code: grpc.StatusCode, message: str = "") -> None:
        attributes = end_attributes(code)
        record.span.set_attributes(attributes)
        if code in SERVER_ERROR_CODES:
            record.span.set_status(Status(StatusCode.ERROR, message or code.name))
        # Metric first, span last: whoever sees the span ended also sees the measurement.
        self.server_duration.record(
            time.perf_counter() - record.started_s,
            {"rpc.system.name": "grpc", "rpc.method": record.method, **attributes},
        )
        record.span.end()

    def shutdown(self) -> None:
        """Flush and stop exporters, and close the /metrics listener if there is one."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        for close in self._closers:
            close()
        self._closers.clear()

    @classmethod
    def create(
        cls,
        config: TelemetryConfig,
        span_processors: Sequence[SpanProcessor] = (),
        metric_readers: Sequence[MetricReader] = (),
    ) -> Telemetry:
        """Build providers from config; extra processors/readers (e.g. in-memory) are added."""
        resource = Resource.create({SERVICE_NAME: config.service_name})
        sampler = ParentBased(TraceIdRatioBased(config.trace_sample_ratio))
        tracer_provider = TracerProvider(resource=resource, sampler=sampler)
        for processor in [*_span_processors(config), *span_processors]:
            tracer_provider.add_span_processor(processor)
        view = View(
            instrument_name="rpc.*.call.duration",
            aggregation=ExplicitBucketHistogramAggregation(boundaries=DURATION_BUCKETS_S),
        )
        readers, closers = _metric_readers(config)
        meter_provider = MeterProvider(
            resource=resource, metric_readers=[*readers, *metric_readers], views=[view]
        )
        return cls(tracer_provider, meter_provider, closers)


def _span_processors(config: TelemetryConfig) -> list[SpanProcessor]:
    if config.traces is TracesExporter.CONSOLE:
        return [BatchSpanProcessor(ConsoleSpanExporter())]
    if config.traces is TracesExporter.OTLP:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return [BatchSpanProcessor(OTLPSpanExporter(endpoint=config.otlp_endpoint, insecure=True))]
    return []


def _metric_readers(
    config: TelemetryConfig,
) -> tuple[list[MetricReader], list[Callable[[], None]]]:
    """Readers for the configured exporter, and what must be closed with them."""
    if config.metrics is MetricsExporter.PROMETHEUS:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server

        # A registry per server, so several servers (or tests) in one process do not collide.
        registry = CollectorRegistry(auto_describe=True)
        httpd, _thread = start_http_server(
            port=config.prometheus_listen.port,
            addr=config.prometheus_listen.host,
            registry=registry,
        )
        return [PrometheusMetricReader(registry=registry)], [httpd.shutdown, httpd.server_close]
    if config.metrics is MetricsExporter.OTLP:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=config.otlp_endpoint, insecure=True)
        interval_ms = config.metric_export_interval_s * 1000
        return [PeriodicExportingMetricReader(exporter, export_interval_millis=interval_ms)], []
    return [], []
