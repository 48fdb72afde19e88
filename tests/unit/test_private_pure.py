"""Pure parts of the private zone: money, normalisation, keyed hashing, envelope encryption."""

from __future__ import annotations

import datetime as dt

import pytest

from isthmus.common.v1 import common_pb2
from isthmus.orders.v1 import orders_pb2
from isthmus.profile.v1 import profile_pb2 as pb
from services.core.errors import InvalidArgument
from services.core.money import currency_problem
from services.private.keys import Keys, UnreadableCiphertext, new_data_key, seal, unseal
from services.private.orders.validation import validate_place
from services.private.profile.normalize import (
    birth_date_problem,
    normalize_email,
    normalize_identifier,
    normalize_phone,
)

MASTER, HMAC = b"m" * 32, b"h" * 32


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("030 12345678", "DE", "+493012345678"),
        ("+49 (30) 1234-5678", "", "+493012345678"),
        ("(202) 456-1111", "US", "+12024561111"),
    ],
)
def test_phone_numbers_normalise_to_e164(raw: str, region: str, e164: str) -> None:
    assert normalize_phone(raw, region) == e164


def test_national_number_without_region_says_so() -> None:
    with pytest.raises(ValueError, match="give region_code for national numbers"):
        normalize_phone("030 12345678", "")


def test_email_and_open_id_normalisation() -> None:
    assert normalize_email("  Ada@Example.ORG ") == "ada@example.org"
    for bad in ("ada", "ada@", "@x.org", "a b@x.org", "ada@localhost"):
        with pytest.raises(ValueError, match="not a valid e-mail"):
            normalize_email(bad)
    assert normalize_identifier(pb.Identifier(open_id="google:123"), "") == (
        "open_id",
        "google:123",
    )
    with pytest.raises(ValueError, match="provider:subject"):
        normalize_identifier(pb.Identifier(open_id="no-colon"), "")


def test_birth_date_rules() -> None:
    today = dt.date(2026, 11, 22)
    assert birth_date_problem(common_pb2.Date(year=1990, month=2, day=28), today) is None
    assert birth_date_problem(common_pb2.Date(year=1990, month=2, day=29), today) == (
        "is not a calendar date"
    )
    assert birth_date_problem(common_pb2.Date(year=2027, month=1, day=1), today) == (
        "is in the future"
    )


def test_currencies() -> None:
    assert currency_problem("EUR") is None
    assert currency_problem("JPY") is None
    assert currency_problem("eur") == "'eur' is not an active ISO 4217 currency code"
    assert currency_problem("") == "is required (ISO 4217 code such as EUR)"


def test_order_total_and_overflow_guard() -> None:
    line = orders_pb2.LineItem(sku="a", quantity=3, unit_price_minor=250)
    request = orders_pb2.PlaceOrderRequest(
        idempotency_key="key-00000001",
        unified_id="u_1",
        currency_code="EUR",
        line_items=[line, line],
        payment_token="tok",
    )
    assert validate_place(request) == 1500
    huge = orders_pb2.LineItem(sku="a", quantity=10_000, unit_price_minor=10**15)
    del request.line_items[:]
    request.line_items.extend([huge])
    with pytest.raises(InvalidArgument, match="order total exceeds"):
        validate_place(request)


def test_identifier_hash_is_keyed_and_kind_scoped() -> None:
    keys = Keys(MASTER, HMAC)
    same = Keys(b"x" * 32, HMAC)  # master key does not affect hashing
    other = Keys(MASTER, b"k" * 32)
    digest = keys.identifier_hash("email", "a@b.org")
    assert digest == same.identifier_hash("email", "a@b.org")
    assert digest != other.identifier_hash("email", "a@b.org")
    assert digest != keys.identifier_hash("device_id", "a@b.org")
    assert keys.pseudonym("u_1") != other.pseudonym("u_1")
    assert keys.pseudonym("u_1").startswith("p_")
    assert "m" * 8 not in repr(keys)


def test_wrapped_data_keys_are_bound_to_their_owner() -> None:
    keys = Keys(MASTER, HMAC)
    dek = new_data_key()
    wrapped = keys.wrap_data_key(dek, "u_1")
    assert keys.unwrap_data_key(wrapped, "u_1") == dek
    with pytest.raises(UnreadableCiphertext):
        keys.unwrap_data_key(wrapped, "u_2")
    with pytest.raises(UnreadableCiphertext):
        Keys(b"z" * 32, HMAC).unwrap_data_key(wrapped, "u_1")


def test_sealed_fields_are_bound_to_their_record() -> None:
    dek = new_data_key()
    blob = seal(dek, b"secret", "profile:u_1")
    assert unseal(dek, blob, "profile:u_1") == b"secret"
    with pytest.raises(UnreadableCiphertext):
        unseal(dek, blob, "profile:u_2")
    with pytest.raises(UnreadableCiphertext):
        unseal(new_data_key(), blob, "profile:u_1")
