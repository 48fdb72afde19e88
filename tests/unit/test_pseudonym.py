"""Pseudonymous ids in a format a door can verify (services/core/pseudonym.py): minted ids
pass, a raw identifier never does, one dressed up in the shape fails the keyed check, and
the problems never repeat the value."""

from __future__ import annotations

import base64
import random

import pytest

from services.core import pseudonym
from services.private.keys import Keys

PSEUDONYM_KEY, CHECK_KEY, OTHER_KEY = b"p" * 32, b"c" * 32, b"o" * 32
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
RAW = [
    "alice@example.com",
    "+49 30 1234567",
    "13800138000",
    "4111 1111 1111 1111",
    "Grace Hopper",
    "u_123",
    "p_alice",
    "P_" + "a" * 30,  # upper case prefix
    "p_" + "a" * 29,  # one short
    "p_" + "a" * 31,  # one long
    "p_" + "a" * 29 + "1",  # 1 is not in base32's alphabet
    "p_" + "a" * 29 + "=",
]


def test_minted_ids_have_the_shape_and_pass_with_and_without_the_key() -> None:
    ids = {pseudonym.mint(PSEUDONYM_KEY, CHECK_KEY, f"u_{i}") for i in range(200)}
    assert len(ids) == 200
    for value in ids:
        assert len(value) == pseudonym.LENGTH == 32
        assert pseudonym.problem(value, CHECK_KEY) is None
        assert pseudonym.problem(value, None) is None
    assert pseudonym.mint(PSEUDONYM_KEY, CHECK_KEY, "u_1") == pseudonym.mint(
        PSEUDONYM_KEY, CHECK_KEY, "u_1"
    )


@pytest.mark.parametrize("value", RAW)
def test_a_raw_identifier_never_passes_and_is_never_echoed(value: str) -> None:
    for key in (CHECK_KEY, None):
        problem = pseudonym.problem(value, key)
        assert problem is not None
        assert "is not a pseudonymous id" in problem
        assert value not in problem


def test_a_raw_identifier_dressed_in_the_shape_fails_the_keyed_check() -> None:
    phone = base64.b32encode(b"+4930123456789xyz").decode().lower().rstrip("=")
    forged = "p_" + (phone + "a" * 30)[:30]
    assert pseudonym.problem(forged, None) is None  # the shape alone cannot tell
    assert pseudonym.problem(forged, CHECK_KEY) == (
        "fails its check: not an id the private zone minted"
    )


def test_the_check_is_keyed_and_catches_a_changed_character() -> None:
    value = pseudonym.mint(PSEUDONYM_KEY, CHECK_KEY, "u_7")
    assert pseudonym.problem(value, OTHER_KEY) is not None  # minted under another check key
    body = value[:-5] + ("b" if value[-5] != "b" else "c") + value[-4:]
    assert pseudonym.problem(body, CHECK_KEY) is not None
    rng = random.Random(0)
    guesses = ["p_" + "".join(rng.choices(ALPHABET, k=30)) for _ in range(2000)]
    assert all(pseudonym.problem(g, None) is None for g in guesses)  # every one has the shape
    forged = sum(pseudonym.problem(g, CHECK_KEY) is None for g in guesses)
    assert forged <= 2  # 2000 guesses at 2^-20 odds each


def test_anonymous_is_allowed_and_the_private_keys_mint_the_format() -> None:
    assert pseudonym.problem("", CHECK_KEY) is None
    keys = Keys(b"m" * 32, PSEUDONYM_KEY, CHECK_KEY)
    assert pseudonym.problem(keys.pseudonym("u_1"), CHECK_KEY) is None
    derived = Keys(b"m" * 32, PSEUDONYM_KEY)  # no check key: one derived from hmac_key
    assert pseudonym.problem(derived.pseudonym("u_1"), None) is None
    assert pseudonym.problem(derived.pseudonym("u_1"), CHECK_KEY) is not None


def test_an_erasure_reaches_the_ids_minted_before_the_check_characters() -> None:
    new = pseudonym.mint(PSEUDONYM_KEY, CHECK_KEY, "u_1")
    legacy = new[:28]  # what Keys.pseudonym returned before: p_ + the same body
    assert pseudonym.with_legacy_forms({new}) == {new, legacy}
    assert pseudonym.with_legacy_forms({"p_other"}) == {"p_other"}
    assert pseudonym.problem(new + "\n", None) is not None  # no trailing newline sneaks past


def test_the_field_convention() -> None:
    assert pseudonym.is_pseudonym_field("pseudonymous_user_id")
    assert pseudonym.is_pseudonym_field("pseudonymous_id")
    assert not pseudonym.is_pseudonym_field("user_id")
    assert not pseudonym.is_pseudonym_field("pseudonymous_kind")


def test_the_gateway_finds_a_bad_id_deep_in_a_batch_and_names_its_path() -> None:
    from isthmus.ads.v1 import ads_pb2
    from isthmus.events.v1 import events_pb2
    from services.contract.descriptors import load_descriptor_set, method_table
    from services.core.errors import InvalidArgument
    from services.gateway.inspection import RequestInspector

    descriptors = load_descriptor_set()
    methods = method_table(descriptors)
    inspector = RequestInspector(descriptors, CHECK_KEY)
    good = pseudonym.mint(PSEUDONYM_KEY, CHECK_KEY, "u_1")
    forged = pseudonym.mint(PSEUDONYM_KEY, OTHER_KEY, "u_1")
    track = methods["/isthmus.events.v1.EventService/Track"]
    batch = events_pb2.TrackRequest(
        events=[events_pb2.Event(event_id=f"e{i}", pseudonymous_user_id=good) for i in range(4)]
    )
    inspector.check(track, batch.SerializeToString())  # all minted: passes
    batch.events[2].pseudonymous_user_id = forged
    with pytest.raises(InvalidArgument) as caught:
        inspector.check(track, batch.SerializeToString())
    assert caught.value.violations[0].field == "events[2].pseudonymous_user_id"
    rank = methods["/isthmus.ads.v1.AdService/Rank"]
    request = ads_pb2.RankRequest(request_id="r", pseudonymous_user_id=good)
    request.candidates.add(ad_id="a", campaign_id="pseudonymous")
    inspector.check(rank, request.SerializeToString())
    inspector.with_check_key(None).check(rank, request.SerializeToString())
    request.pseudonymous_user_id = "u_1"
    with pytest.raises(InvalidArgument):
        inspector.with_check_key(None).check(rank, request.SerializeToString())


def test_an_id_in_a_map_inside_a_nested_message_is_checked() -> None:
    """Other teams' contracts may carry ids in maps of messages, at any depth."""
    from types import SimpleNamespace
    from typing import cast

    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    from services.contract.descriptors import MethodInfo
    from services.core.errors import InvalidArgument
    from services.gateway.inspection import RequestInspector

    proto = descriptor_pb2.FileDescriptorProto(name="team.proto", package="team", syntax="proto3")
    entry = proto.message_type.add(name="Entry")
    entry.field.add(name="pseudonymous_user_id", number=1, type=9, label=1)  # string
    inner = proto.message_type.add(name="Inner")
    attrs_entry = inner.nested_type.add(name="AttrsEntry")
    attrs_entry.options.map_entry = True
    attrs_entry.field.add(name="key", number=1, type=9, label=1)
    attrs_entry.field.add(name="value", number=2, type=11, label=1, type_name=".team.Entry")
    inner.field.add(name="attrs", number=1, type=11, label=3, type_name=".team.Inner.AttrsEntry")
    outer = proto.message_type.add(name="Outer")
    outer.field.add(name="inner", number=1, type=11, label=1, type_name=".team.Inner")
    descriptors = descriptor_pb2.FileDescriptorSet(file=[proto])
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(proto.SerializeToString())
    message = message_factory.GetMessageClass(pool.FindMessageTypeByName("team.Outer"))()
    method = cast(MethodInfo, SimpleNamespace(is_public=True, input_type="team.Outer"))
    inspector = RequestInspector(descriptors, CHECK_KEY)

    message.inner.attrs["a"].pseudonymous_user_id = pseudonym.mint(PSEUDONYM_KEY, CHECK_KEY, "u")
    inspector.check(method, message.SerializeToString())
    message.inner.attrs["b"].pseudonymous_user_id = "not-an-id"
    with pytest.raises(InvalidArgument) as caught:
        inspector.check(method, message.SerializeToString())
    assert caught.value.violations[0].field.startswith("inner.attrs[")
    assert caught.value.violations[0].field.endswith("].pseudonymous_user_id")
