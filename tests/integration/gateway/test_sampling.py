"""Span sampling at the gateway: sampled-out calls record no span but still carry W3C trace
context upstream; a caller's sampled trace is always recorded (parent-based); metrics see
every call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.contract.descriptors import MethodInfo
from services.core.config import TelemetryConfig
from services.core.telemetry import Telemetry
from services.gateway.app import build_gateway
from tests.integration.gateway.conftest import TOKEN_KEY_HEX, Upstream, auth, lab_config
from tests.integration.gateway.upstreams import ECHO, _msg, start_upstream

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def sampled_out(
    loop_thread: Any,
    test_methods: dict[str, MethodInfo],
    test_contract: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[grpc.Channel, InMemorySpanExporter, InMemoryMetricReader]]:
    monkeypatch.setenv("ISTHMUS_TEST_TOKEN_KEY", TOKEN_KEY_HEX)
    server, port, echo, ads = loop_thread.run(start_upstream("u"))
    ups = {name: [Upstream(name, server, port, echo, ads)] for name in ("public-a", "private")}
    ups["public-b"] = ups["public-a"]
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = Telemetry.create(
        TelemetryConfig(trace_sample_ratio=0.0),
        span_processors=[SimpleSpanProcessor(spans)],
        metric_readers=[metrics],
    )

    async def start() -> Any:
        runtime = build_gateway(
            lab_config(ups), methods=test_methods, telemetry=telemetry, descriptors=test_contract
        )
        await runtime.start()
        return runtime

    runtime = loop_thread.run(start())
    channel = grpc.insecure_channel(f"127.0.0.1:{runtime.port}")
    try:
        yield channel, spans, metrics
    finally:
        channel.close()
        loop_thread.run(runtime.stop(0))
        loop_thread.run(server.stop(0))


def seen_traceparent(channel: grpc.Channel, extra: list[tuple[str, str]]) -> str:
    stub = channel.unary_unary(f"/{ECHO}/Unary")
    _, rpc = stub.with_call(_msg("x"), metadata=auth() + extra, timeout=5)
    return str(dict(rpc.trailing_metadata())["x-seen-traceparent"])


def test_sampled_out_calls_record_nothing_but_propagate(
    sampled_out: tuple[grpc.Channel, InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    channel, spans, metrics = sampled_out
    for _ in range(5):
        version, trace_id, span_id, flags = seen_traceparent(channel, []).split("-")
        assert version == "00"
        assert int(flags, 16) & 1 == 0  # not sampled (bit 1 may say "random trace id")
        assert int(trace_id, 16) != 0
        assert int(span_id, 16) != 0
    assert spans.get_finished_spans() == ()
    data = metrics.get_metrics_data()
    durations = [
        point.count
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "rpc.server.call.duration"
        for point in metric.data.data_points
        if point.attributes.get("rpc.method") == f"{ECHO}/Unary"
    ]
    assert sum(durations) == 5


def test_a_callers_sampled_trace_is_recorded_and_continued(
    sampled_out: tuple[grpc.Channel, InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    channel, spans, _ = sampled_out
    parent = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
    _, trace_id, span_id, flags = seen_traceparent(channel, [("traceparent", parent)]).split("-")
    assert trace_id == CALLER_TRACE
    assert int(flags, 16) & 1 == 1
    finished = {s.kind.name: s for s in spans.get_finished_spans()}
    assert set(finished) == {"SERVER", "CLIENT"}
    assert format(finished["CLIENT"].context.span_id, "016x") == span_id
    assert finished["CLIENT"].parent.span_id == finished["SERVER"].context.span_id
    assert format(finished["SERVER"].context.trace_id, "032x") == CALLER_TRACE
