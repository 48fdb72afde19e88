"""No personal data through a PUBLIC door: a PUBLIC request with a value shaped like an
e-mail address, a phone number or a card number in any string field is refused with
INVALID_ARGUMENT naming the field (never the value), nothing of it reaches the upstream or
the gateway's log, and SENSITIVE methods (private zone only) are not inspected."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from isthmus.ads.v1 import ads_pb2_grpc
from tests.integration.gateway.conftest import auth
from tests.integration.gateway.upstreams import ECHO, _msg, _text
from tests.support.ads_zone import rank_request

pytestmark = pytest.mark.integration
PERSONAL = {
    "e-mail address": "alice@example.com",
    "phone number": "13800138000",
    "payment card number": "4111 1111 1111 1111",
}


def bad_request(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations of an error's rich status."""
    status = rpc_status.from_call(error)
    assert status is not None, error
    request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(request)
    return [(v.field, v.description) for v in request.field_violations]


def seen_upstream(lab: Any) -> list[str]:
    return [text for group in lab.upstreams.values() for u in group for text in u.echo.seen]


@pytest.mark.parametrize("shape", list(PERSONAL))
def test_a_public_unary_call_carrying_personal_data_is_refused_naming_the_field(
    lab: Any, shape: str, caplog: pytest.LogCaptureFixture
) -> None:
    value = PERSONAL[shape]
    caplog.set_level(logging.DEBUG)
    unary = lab.channel.unary_unary(f"/{ECHO}/Unary")
    with pytest.raises(grpc.RpcError) as caught:
        unary(_msg(f"contact {value} please"), metadata=auth(), timeout=5)
    error = caught.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = bad_request(error)
    assert [field for field, _ in violations] == ["text"]
    assert shape in violations[0][1]
    assert value not in (error.details() or "")
    assert value not in str(violations)
    assert not any(value in text for text in seen_upstream(lab))
    assert value not in caplog.text
    assert lab.counter("refused_personal_data") == 1


def test_a_nested_repeated_field_is_named_by_its_path(lab: Any) -> None:
    stub = ads_pb2_grpc.AdServiceStub(lab.channel)
    request = rank_request(2, "r-1")
    request.candidates[1].campaign_id = "+86 138 0013 8000"
    calls = sum(u.ads.calls for group in lab.upstreams.values() for u in group)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Rank(request, metadata=auth(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(caught.value)] == ["candidates[1].campaign_id"]
    assert sum(u.ads.calls for group in lab.upstreams.values() for u in group) == calls


def test_ids_the_platform_uses_pass_untouched(lab: Any) -> None:
    unary = lab.channel.unary_unary(f"/{ECHO}/Unary")
    for text in ("550e8400-e29b-41d4-a716-446655440000", "ad-12", "2026-11-30 07:45:00"):
        assert _text(unary(_msg(text), metadata=auth(), timeout=5)).endswith(":" + text)


def test_a_sensitive_method_is_not_inspected(lab: Any) -> None:
    """SENSITIVE methods only ever reach the private zone, where personal data belongs."""
    secret = lab.channel.unary_unary(f"/{ECHO}/Secret")
    answer = _text(secret(_msg("alice@example.com"), metadata=auth(), timeout=5))
    assert answer.endswith(":alice@example.com")


def test_a_stream_is_cut_before_the_message_with_personal_data_goes_upstream(lab: Any) -> None:
    chat = lab.channel.stream_stream(f"/{ECHO}/Chat")
    requests = [_msg("hello"), _msg("mail me at bob@example.org"), _msg("later")]
    with pytest.raises(grpc.RpcError) as caught:
        list(chat(iter(requests), metadata=auth(), timeout=5))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(caught.value)] == ["text"]
    seen = seen_upstream(lab)
    assert not any("bob@example.org" in text for text in seen)
    assert "later" not in seen


CHECK_KEY_HEX = "5a" * 32


def minted(unified_id: str, check_key: bytes) -> str:
    from services.core import pseudonym

    return pseudonym.mint(b"k" * 32, check_key, unified_id)


def rank_as(lab: Any, user: str) -> grpc.RpcError | None:
    stub = ads_pb2_grpc.AdServiceStub(lab.channel)
    try:
        stub.Rank(rank_request(2, "r-p", user=user), metadata=auth(), timeout=5)
    except grpc.RpcError as error:
        return error
    return None


def test_a_raw_identifier_in_a_pseudonymous_id_is_refused_naming_the_field(lab: Any) -> None:
    calls = sum(u.ads.calls for group in lab.upstreams.values() for u in group)
    for raw in ("u_1234", "alice", "p_alice", "Grace Hopper"):  # no personal *shape* in these
        error = rank_as(lab, raw)
        assert error is not None, raw
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        ((field, description),) = bad_request(error)
        assert field == "pseudonymous_user_id"
        assert "is not a pseudonymous id" in description
        assert raw not in description
    assert sum(u.ads.calls for group in lab.upstreams.values() for u in group) == calls
    assert rank_as(lab, "") is None  # anonymous
    assert rank_as(lab, minted("u_1", b"x" * 32)) is None  # no check key: the shape only


def test_with_the_check_key_only_ids_the_private_zone_minted_pass(
    lab: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.core.secret_ref import SecretRef

    monkeypatch.setenv("ISTHMUS_TEST_CHECK_KEY", CHECK_KEY_HEX)
    config = lab.config_holder[0].model_copy(
        update={"pseudonym_check_key": SecretRef(env="ISTHMUS_TEST_CHECK_KEY")}
    )
    lab.runtime.gateway.reload(config)
    key = bytes.fromhex(CHECK_KEY_HEX)
    assert rank_as(lab, minted("u_1", key)) is None
    forged = minted("u_1", b"x" * 32)  # right shape, another check key
    error = rank_as(lab, forged)
    assert error is not None
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(error) == [
        ("pseudonymous_user_id", "fails its check: not an id the private zone minted")
    ]
