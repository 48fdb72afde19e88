"""Which values have a personal shape (pure), where a request's walk finds them, and the raw
first look that lets clean requests through unparsed: it must never miss what the full check
would find."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isthmus.ads.v1 import ads_pb2
from isthmus.events.v1 import events_pb2
from services.core.pii_shapes import (
    CARD_SHAPE,
    EMAIL_SHAPE,
    PHONE_SHAPE,
    luhn_ok,
    personal_field,
    shape_of,
    suspect,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        ("alice@example.com", EMAIL_SHAPE),
        ("write to a.b+c@mail.example.co.uk today", EMAIL_SHAPE),
        ("x@1.2.com", EMAIL_SHAPE),
        ("13800138000", PHONE_SHAPE),
        ("+1 (415) 555-0100", PHONE_SHAPE),
        ("+86 138 0013 8000", PHONE_SHAPE),
        ("call 415.555.0100 now", PHONE_SHAPE),
        ("4111 1111 1111 1111", CARD_SHAPE),
        ("4111-1111-1111-1111", CARD_SHAPE),
        ("5500005555555559", CARD_SHAPE),
        ("2026-11-30 0612345678", PHONE_SHAPE),  # a date in front hides nothing
        ("2026-01-01 4111 1111 1111 1111", CARD_SHAPE),
        # ids and other values the platform uses
        ("550e8400-e29b-41d4-a716-446655440000", None),
        ("550e8400-e29b-41d4-a716-123456789012", None),  # an all-digit last group
        ("evt-1732960000123", None),
        ("ad-12", None),
        ("camp-3", None),
        ("home-top", None),
        ("ctr-20261130-abc", None),
        ("2026-11-30 07:45:00", None),
        ("2026-11-30T07:45:00Z", None),
        ("123456789", None),  # 9 digits: too short for a phone
        ("user@localhost", None),  # no domain with a dot
        ("", None),
    ],
)
def test_shapes(value: str, shape: str | None) -> None:
    assert shape_of(value) == shape
    if shape is not None:
        assert suspect(value.encode())


def test_a_sixteen_digit_number_failing_luhn_is_not_a_card() -> None:
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
    assert shape_of("4111111111111112") is None  # not a card, and too long for a phone


def test_uuid_hex_ids_never_have_a_personal_shape() -> None:
    for _ in range(2000):
        assert shape_of(uuid.uuid4().hex) is None
        assert shape_of(str(uuid.uuid4())) is None


@given(st.text(alphabet="0123456789 +-().@abcdexyz", max_size=40))
def test_the_raw_first_look_never_misses_what_the_full_check_finds(value: str) -> None:
    if shape_of(value) is not None:
        assert suspect(value.encode())
        event = events_pb2.Event(event_id="e-1", placement_id=value)
        assert suspect(event.SerializeToString())


def test_the_walk_names_nested_and_repeated_fields_by_path() -> None:
    request = ads_pb2.RankRequest(
        request_id="r-1",
        context=ads_pb2.RankContext(placement_id="home-top"),
        candidates=[
            ads_pb2.Candidate(ad_id="ad-1"),
            ads_pb2.Candidate(ad_id="ad-2", campaign_id="bob@example.org"),
        ],
    )
    assert personal_field(request) == ("candidates[1].campaign_id", EMAIL_SHAPE)
    clean = ads_pb2.RankRequest(request_id=uuid.uuid4().hex, candidates=[ads_pb2.Candidate()])
    assert personal_field(clean) is None
    track = events_pb2.TrackRequest(events=[events_pb2.Event(), events_pb2.Event()])
    track.events[1].pseudonymous_user_id = "13800138000"
    assert personal_field(track) == ("events[1].pseudonymous_user_id", PHONE_SHAPE)
