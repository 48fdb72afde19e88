"""Authentication, authorization, rate limits, size limits and garbage input."""

from __future__ import annotations

import contextlib
import random
import socket
import time
from typing import Any

import grpc
import pytest

from services.gateway.auth import issue_token
from tests.integration.gateway.conftest import TOKEN_KEY_HEX, auth, token
from tests.integration.gateway.upstreams import ECHO, _msg, _text


def unary(lab: Any, metadata: list[tuple[str, str]], method: str = "Unary") -> Any:
    return lab.channel.unary_unary(f"/{ECHO}/{method}")(_msg("a"), metadata=metadata, timeout=5)


def code_of(fn: Any) -> grpc.StatusCode:
    try:
        fn()
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("metadata", "detail"),
    [
        ([], "no client certificate or bearer token"),
        ([("authorization", "Bearer nonsense")], "bearer token is malformed"),
        ([("authorization", "Bearer e30.e30.AAAA")], "algorithm is not accepted"),
    ],
)
def test_unauthenticated(lab: Any, metadata: list[tuple[str, str]], detail: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        unary(lab, metadata)
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert detail in err.value.details()
    assert lab.echo_calls("Unary") == 0


def test_expired_wrong_key_and_unknown_subject(lab: Any) -> None:
    expired = issue_token(bytes.fromhex(TOKEN_KEY_HEX), "checkout", int(time.time()) - 1)
    forged = issue_token(b"\x01" * 32, "checkout", int(time.time()) + 60)
    for bad in (expired, forged, token("stranger")):
        assert code_of(lambda b=bad: unary(lab, [("authorization", f"Bearer {b}")])) is (
            grpc.StatusCode.UNAUTHENTICATED
        )


def test_unauthorized_method_is_permission_denied(lab: Any) -> None:
    assert _text(unary(lab, auth("reporting"))).endswith(":a")
    with pytest.raises(grpc.RpcError) as err:
        unary(lab, auth("reporting"), method="Write")
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert err.value.details() == f"caller reporting may not call /{ECHO}/Write"


def test_rate_limit_is_resource_exhausted(lab: Any) -> None:
    codes = [code_of(lambda: unary(lab, auth("reporting"))) for _ in range(6)]
    assert codes[:2] == [grpc.StatusCode.OK, grpc.StatusCode.OK]  # burst of 2
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes[2:]
    # Another caller is not affected.
    assert code_of(lambda: unary(lab, auth("checkout"))) is grpc.StatusCode.OK


def test_oversized_message_is_refused_and_gateway_stays_up(lab: Any) -> None:
    stub = lab.channel.unary_unary(f"/{ECHO}/Unary")
    with pytest.raises(grpc.RpcError) as err:
        stub(b"\x0a" + b"\xff\xff\x07" + b"x" * 200_000, metadata=auth(), timeout=5)
    assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _text(unary(lab, auth())).endswith(":a")


def test_fuzzed_payloads_get_a_status_and_never_kill_the_gateway(lab: Any) -> None:
    """Random bytes as request bodies on every method shape: each call ends with a gRPC status
    (the gateway forwards bytes; the upstream judges them), and the gateway keeps serving."""
    rng = random.Random(20261122)
    methods = ["Unary", "Write", "Split", "Secret", "/isthmus.ads.v1.AdService/Rank"]
    seen: set[grpc.StatusCode] = set()
    for i in range(300):
        body = rng.randbytes(rng.choice([0, 1, 7, 64, 1024, 60_000]))
        path = methods[i % len(methods)]
        path = path if path.startswith("/") else f"/{ECHO}/{path}"
        if path.endswith("Split"):
            fn = lambda p=path, b=body: list(  # noqa: E731
                lab.channel.unary_stream(p)(b, metadata=auth(), timeout=5)
            )
        else:
            fn = lambda p=path, b=body: lab.channel.unary_unary(p)(b, metadata=auth(), timeout=5)  # noqa: E731
        seen.add(code_of(fn))
    assert seen <= {
        grpc.StatusCode.OK,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNKNOWN,
    }
    assert _text(unary(lab, auth())).endswith(":a")


def test_raw_garbage_on_the_socket_does_not_kill_the_gateway(lab: Any) -> None:
    rng = random.Random(7)
    for size in (0, 1, 24, 100, 5000):
        with socket.create_connection(("127.0.0.1", lab.port), timeout=2) as sock:
            # An HTTP/2 preface followed by garbage frames, or garbage alone.
            prefix = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" if size % 2 else b""
            sock.sendall(prefix + rng.randbytes(size))
            with contextlib.suppress(OSError):
                sock.recv(1024)
    assert _text(unary(lab, auth())).endswith(":a")
