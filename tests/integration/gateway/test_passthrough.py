"""The gateway is transparent: all four call shapes, metadata, trailers, status, details,
deadlines and cancellation pass through; unknown methods are UNIMPLEMENTED."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.integration.gateway.conftest import auth
from tests.integration.gateway.upstreams import ECHO, _msg, _text


def call(lab: Any, method: str, text: str, **kwargs: Any) -> Any:
    stub = lab.channel.unary_unary(f"/{ECHO}/{method}")
    return stub.with_call(_msg(text), metadata=auth() + kwargs.pop("metadata", []), **kwargs)


def test_unary_with_metadata_and_trailers(lab: Any) -> None:
    response, rpc = call(lab, "Unary", "hi", metadata=[("x-custom", "v1")])
    assert _text(response).endswith(":hi")
    initial = dict(rpc.initial_metadata())
    trailing = dict(rpc.trailing_metadata())
    assert initial["x-served-by"].startswith("public-a")
    assert trailing["x-trailer"] == "t-" + initial["x-served-by"]
    assert trailing["x-seen-custom"] == "v1"
    assert trailing["x-seen-caller"] == "checkout"  # set by the gateway, not the client
    assert trailing["x-seen-traceparent"].startswith("00-")


def test_status_and_rich_details_pass_through(lab: Any) -> None:
    with pytest.raises(grpc.RpcError) as err:
        call(lab, "Unary", "rich")
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == "rich failure"
    status = rpc_status.from_call(err.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "QUOTA"
    with pytest.raises(grpc.RpcError) as err:
        call(lab, "Unary", "fail:NOT_FOUND")
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    assert err.value.details().startswith("failed on public-a")


def test_server_client_and_bidi_streaming(lab: Any) -> None:
    split = lab.channel.unary_stream(f"/{ECHO}/Split")
    assert [_text(m) for m in split(_msg("a,b,c"), metadata=auth())] == ["a", "b", "c"]
    join = lab.channel.stream_unary(f"/{ECHO}/Join")
    assert _text(join(iter([_msg("x"), _msg("y")]), metadata=auth())) == "x+y"
    chat = lab.channel.stream_stream(f"/{ECHO}/Chat")
    assert [_text(m) for m in chat(iter([_msg("p"), _msg("q")]), metadata=auth())] == ["P", "Q"]


def test_deadline_is_propagated_and_capped_by_the_per_try_timeout(lab: Any) -> None:
    # The caller's deadline travels upstream (gRPC encodes it with a few ms of slack) ...
    response, _ = call(lab, "Unary", "deadline", timeout=1.2)
    assert 0.9 < float(_text(response)) <= 1.25
    # ... and the route's per-try timeout (2 s) caps a longer one.
    response, _ = call(lab, "Unary", "deadline", timeout=30)
    assert 1.5 < float(_text(response)) <= 2.05


def test_deadline_exceeded_passes_through(lab: Any) -> None:
    with pytest.raises(grpc.RpcError) as err:
        call(lab, "Write", "sleep:3", timeout=0.3)
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


def test_cancellation_reaches_the_upstream(lab: Any) -> None:
    stub = lab.channel.unary_unary(f"/{ECHO}/Write")
    future = stub.future(_msg("sleep:5"), metadata=auth())
    started = time.monotonic() + 5
    while sum(u.echo.calls["Write"] for u in lab.upstreams["public-a"]) < 1:
        assert time.monotonic() < started, "the call never reached an upstream"
        time.sleep(0.02)
    future.cancel()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if sum(u.echo.cancelled for u in lab.upstreams["public-a"]) == 1:
            break
        time.sleep(0.02)
    assert sum(u.echo.cancelled for u in lab.upstreams["public-a"]) == 1


def test_unknown_method_is_unimplemented(lab: Any) -> None:
    for path in (f"/{ECHO}/Nope", "/no.Such/Thing"):
        with pytest.raises(grpc.RpcError) as err:
            lab.channel.unary_unary(path)(b"", metadata=auth())
        assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_gateway_serves_health(lab: Any) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    reply = health_pb2_grpc.HealthStub(lab.channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_concurrent_calls_do_not_cross(lab: Any) -> None:
    results: list[str] = []

    def worker(i: int) -> None:
        response, _ = call(lab, "Unary", f"n{i}")
        results.append(_text(response).split(":", 1)[1])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(f"n{i}" for i in range(40))
