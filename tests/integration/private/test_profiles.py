"""ProfileService on a real server, on SQLite and PostgreSQL: identity resolution and merges,
encrypted profiles, crypto-shredding erasure, audit records, precise validation errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from sqlalchemy import select

from isthmus.common.v1 import common_pb2
from isthmus.profile.v1 import profile_pb2 as pb
from isthmus.profile.v1 import profile_pb2_grpc
from services.private.config import keys_of
from services.private.db.tables import audit_log, data_keys, identities, identity_merges, profiles
from services.private.keys import UnreadableCiphertext, unseal

PHONE_NATIONAL = "030 12345678"  # Berlin, read with region DE
PHONE_E164 = "+493012345678"
EMAIL = "Ada.Lovelace@Example.ORG"


@pytest.fixture
def stub(private_server: Any) -> profile_pb2_grpc.ProfileServiceStub:
    return profile_pb2_grpc.ProfileServiceStub(private_server[0])


def resolve(stub: Any, *identifiers: pb.Identifier, create: bool = True) -> Any:
    return stub.ResolveIdentity(
        pb.ResolveIdentityRequest(
            identifiers=list(identifiers), region_code="DE", create_if_missing=create
        )
    )


def rows(db: Any, table: Any) -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(table)).all())


def test_identifiers_are_normalised_hashed_and_linked(stub: Any, private_server: Any) -> None:
    first = resolve(stub, pb.Identifier(phone_number=PHONE_NATIONAL))
    assert first.created
    assert first.pseudonymous_id.startswith("p_")
    # Same phone in another notation plus a new e-mail: same person, e-mail now linked.
    second = resolve(stub, pb.Identifier(phone_number=PHONE_E164), pb.Identifier(email=EMAIL))
    assert (second.unified_id, second.created) == (first.unified_id, False)
    third = resolve(stub, pb.Identifier(email=EMAIL.lower()), create=False)
    assert third.unified_id == first.unified_id
    stored = rows(private_server[2], identities)
    assert len(stored) == 2
    dump = repr(stored)
    assert "30123456" not in dump
    assert "lovelace" not in dump.lower()


def test_linking_two_known_people_merges_into_the_older(stub: Any, private_server: Any) -> None:
    older = resolve(stub, pb.Identifier(email="a@example.org")).unified_id
    newer = resolve(stub, pb.Identifier(device_id="DEV-1")).unified_id
    merged = resolve(stub, pb.Identifier(device_id="dev-1"), pb.Identifier(email="a@example.org"))
    assert merged.unified_id == older
    assert list(merged.merged_unified_ids) == [newer]
    again = resolve(stub, pb.Identifier(device_id="dev-1"), create=False)
    assert again.unified_id == older
    assert [(m.from_id, m.into_id) for m in rows(private_server[2], identity_merges)] == [
        (newer, older)
    ]


def test_unknown_identifiers_without_create_are_not_found(stub: Any) -> None:
    with pytest.raises(grpc.RpcError) as err:
        resolve(stub, pb.Identifier(email="nobody@example.org"), create=False)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND


def full_profile(uid: str) -> pb.Profile:
    return pb.Profile(
        unified_id=uid,
        given_name="Ada",
        family_name="Lovelace",
        email=EMAIL,
        phone_number=PHONE_NATIONAL,
        birth_date=common_pb2.Date(year=1985, month=12, day=10),
        language_code="en-GB",
        region_code="DE",
        consents=[pb.Consent(channel=pb.CONTACT_CHANNEL_EMAIL, granted=True)],
    )


def test_profile_round_trip_is_encrypted_at_rest(stub: Any, private_server: Any) -> None:
    uid = resolve(stub, pb.Identifier(email=EMAIL)).unified_id
    created = stub.UpsertProfile(pb.UpsertProfileRequest(profile=full_profile(uid)))
    assert created.created
    assert created.profile.email == EMAIL.lower()
    assert created.profile.phone_number == PHONE_E164
    got = stub.GetProfile(pb.GetProfileRequest(unified_id=uid)).profile
    assert got == created.profile
    (row,) = rows(private_server[2], profiles)
    assert b"Lovelace" not in row.pii_ciphertext
    assert "Lovelace" not in repr(row)


def test_field_mask_and_optimistic_locking(stub: Any) -> None:
    uid = resolve(stub, pb.Identifier(email=EMAIL)).unified_id
    v1 = stub.UpsertProfile(pb.UpsertProfileRequest(profile=full_profile(uid))).profile
    patch = pb.UpsertProfileRequest(
        profile=pb.Profile(unified_id=uid, given_name="Augusta"),
        update_mask=field_mask_pb2.FieldMask(paths=["given_name"]),
        expected_version=v1.version,
    )
    v2 = stub.UpsertProfile(patch).profile
    assert (v2.given_name, v2.family_name, v2.version) == ("Augusta", "Lovelace", v1.version + 1)
    with pytest.raises(grpc.RpcError) as err:
        stub.UpsertProfile(patch)  # stale version
    assert err.value.code() is grpc.StatusCode.ABORTED
    assert err.value.details() == f"profile version is {v2.version}, expected {v1.version}"


def test_erase_shreds_pii_and_leaves_a_record(stub: Any, private_server: Any) -> None:
    _, config, db = private_server
    uid = resolve(stub, pb.Identifier(email=EMAIL)).unified_id
    stub.UpsertProfile(pb.UpsertProfileRequest(profile=full_profile(uid)))
    ciphertext = rows(db, profiles)[0].pii_ciphertext
    erased = stub.EraseProfile(pb.EraseProfileRequest(unified_id=uid, reason="gdpr-art17:T-1"))
    assert not erased.already_erased
    assert stub.EraseProfile(pb.EraseProfileRequest(unified_id=uid, reason="again")).already_erased
    with pytest.raises(grpc.RpcError) as err:
        stub.GetProfile(pb.GetProfileRequest(unified_id=uid))
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    assert rows(db, data_keys) == []
    assert rows(db, profiles) == []
    assert rows(db, identities) == []
    # Even a copy of the old ciphertext taken before the erase is now undecryptable: no data
    # key for this person exists any more, and a fresh key cannot open it.
    keys = keys_of(config)
    assert keys.master_key_id
    with pytest.raises(UnreadableCiphertext):
        unseal(b"\x00" * 32, ciphertext, f"profile:{uid}")
    # The same identifiers now resolve to a new person.
    assert resolve(stub, pb.Identifier(email=EMAIL)).unified_id != uid


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_erase_leaves_no_plaintext_or_key_in_the_sqlite_file(
    stub: Any, private_server: Any
) -> None:
    db = private_server[2]
    uid = resolve(stub, pb.Identifier(email=EMAIL)).unified_id
    stub.UpsertProfile(pb.UpsertProfileRequest(profile=full_profile(uid)))
    wrapped = rows(db, data_keys)[0].wrapped_key
    stub.EraseProfile(pb.EraseProfileRequest(unified_id=uid, reason="gdpr"))
    path = db.url.database
    files = [Path(path), Path(path + "-wal")]
    raw = b"".join(f.read_bytes() for f in files if f.exists())
    assert wrapped not in raw  # secure_delete overwrote the wrapped data key
    assert b"Lovelace" not in raw
    assert EMAIL.lower().encode() not in raw


def test_every_pii_access_is_audited_without_values(stub: Any, private_server: Any) -> None:
    uid = resolve(stub, pb.Identifier(email=EMAIL)).unified_id
    stub.UpsertProfile(pb.UpsertProfileRequest(profile=full_profile(uid)))
    stub.GetProfile(pb.GetProfileRequest(unified_id=uid))
    stub.EraseProfile(pb.EraseProfileRequest(unified_id=uid, reason="gdpr"))
    audit = rows(private_server[2], audit_log)
    assert [(a.method, a.action, a.unified_id) for a in audit] == [
        ("ResolveIdentity", "resolve", uid),
        ("UpsertProfile", "write", uid),
        ("GetProfile", "read", uid),
        ("EraseProfile", "erase", uid),
    ]
    assert all(a.caller == "anonymous" for a in audit)
    assert "lovelace" not in repr(audit).lower()


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (pb.ResolveIdentityRequest(), "identifiers: at least one identifier is required"),
        (
            pb.ResolveIdentityRequest(
                identifiers=[pb.Identifier(phone_number="12")], region_code="DE"
            ),
            "identifiers[0].phone_number: is not a valid phone number for region DE",
        ),
        (
            pb.ResolveIdentityRequest(identifiers=[pb.Identifier(email="not-an-email")]),
            "identifiers[0].email: is not a valid e-mail address",
        ),
        (
            pb.ResolveIdentityRequest(identifiers=[pb.Identifier()]),
            "identifiers[0]: must set one of phone_number, email, device_id, open_id",
        ),
    ],
)
def test_bad_identifiers(stub: Any, request_: Any, message: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.ResolveIdentity(request_)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == message


def test_bad_profiles(stub: Any) -> None:
    uid = resolve(stub, pb.Identifier(email=EMAIL)).unified_id
    bad = full_profile(uid)
    bad.birth_date.CopyFrom(common_pb2.Date(year=2001, month=2, day=30))
    bad.phone_number = "+49 1"
    bad.consents.add(channel=pb.CONTACT_CHANNEL_EMAIL, granted=False)
    with pytest.raises(grpc.RpcError) as err:
        stub.UpsertProfile(pb.UpsertProfileRequest(profile=bad))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == (
        "profile.phone_number: is not a valid phone number for region DE; "
        "profile.birth_date: is not a calendar date; "
        "profile.consents[1].channel: appears more than once"
    )
    assert "+49 1" not in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.UpsertProfile(
            pb.UpsertProfileRequest(
                profile=pb.Profile(unified_id=uid),
                update_mask=field_mask_pb2.FieldMask(paths=["version"]),
            )
        )
    assert err.value.details() == "update_mask.paths[0]: 'version' is not a writable Profile field"
    with pytest.raises(grpc.RpcError) as err:
        stub.UpsertProfile(pb.UpsertProfileRequest(profile=full_profile("u_nobody")))
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
