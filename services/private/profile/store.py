"""Identity links, encrypted profiles, erasure and the PII audit trail, in the database.

Personal fields are one AES-GCM blob per person under that person's data key; the rest
(language, region, consents, timestamps) is stored in clear for querying. Every read or write
of personal data appends an audit row in the same transaction: caller, method, unified id,
time, action -- never a value.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from isthmus.common.v1 import common_pb2
from isthmus.profile.v1 import profile_pb2
from services.core.errors import Aborted, NotFound
from services.private.clock import now_us, to_timestamp
from services.private.db.engine import Database
from services.private.db.tables import (
    audit_log,
    data_keys,
    erasures,
    identities,
    identity_merges,
    profiles,
    unified_ids,
)
from services.private.keys import Keys, new_data_key, seal, unseal

PII_FIELDS = ("given_name", "family_name", "email", "phone_number")


@dataclass(frozen=True, slots=True)
class Resolved:
    unified_id: str
    pseudonymous_id: str
    created: bool
    merged: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Erased:
    erasure_id: str
    erase_us: int
    already: bool


class ProfileStore:
    """ProfileService's persistence. Methods block: call them from a worker thread."""

    def __init__(self, db: Database, keys: Keys) -> None:
        self._db = db
        self._keys = keys

    # ---- identity ----------------------------------------------------------------------
    def resolve(self, ids: list[tuple[str, str]], create: bool, caller: str) -> Resolved:
        hashes = {self._keys.identifier_hash(kind, value): kind for kind, value in ids}

        def work(conn: Connection) -> Resolved:
            rows = conn.execute(
                select(identities).where(identities.c.id_hash.in_(list(hashes)))
            ).all()
            owners = conn.execute(
                select(unified_ids.c.unified_id, unified_ids.c.created_us).where(
                    unified_ids.c.unified_id.in_({r.unified_id for r in rows})
                )
            ).all()
            now = now_us()
            created = False
            if not owners:
                if not create:
                    raise NotFound("no person is known by these identifiers")
                survivor = "u_" + secrets.token_hex(12)
                conn.execute(insert(unified_ids).values(unified_id=survivor, created_us=now))
                created = True
                losers: list[str] = []
            else:
                # Deterministic: the oldest id survives; ties broken by id.
                ordered = sorted(owners, key=lambda o: (o.created_us, o.unified_id))
                survivor, losers = ordered[0].unified_id, [o.unified_id for o in ordered[1:]]
                for loser in losers:
                    _merge(conn, loser, survivor, now)
            known = {r.id_hash for r in rows}
            for id_hash, kind in sorted(hashes.items()):
                if id_hash not in known:
                    conn.execute(
                        insert(identities).values(
                            id_hash=id_hash, kind=kind, unified_id=survivor, created_us=now
                        )
                    )
            _audit(conn, caller, "ResolveIdentity", survivor, "resolve")
            return Resolved(survivor, self._keys.pseudonym(survivor), created, tuple(losers))

        return self._db.run(work, write=True, retry_on_conflict=True)

    # ---- profiles ----------------------------------------------------------------------
    def upsert(
        self,
        incoming: profile_pb2.Profile,
        paths: set[str],
        expected_version: int,
        caller: str,
    ) -> tuple[profile_pb2.Profile, bool]:
        uid = incoming.unified_id

        def work(conn: Connection) -> tuple[profile_pb2.Profile, bool]:
            _require_live(conn, uid)
            row = conn.execute(select(profiles).where(profiles.c.unified_id == uid)).first()
            if expected_version and (row is None or row.version != expected_version):
                have = 0 if row is None else row.version
                raise Aborted(f"profile version is {have}, expected {expected_version}")
            key = self._data_key_for_write(conn, uid)
            current = self._decode(row, key) if row is not None else profile_pb2.Profile()
            merged = _apply(current, incoming, paths)
            now = now_us()
            values = {
                "pii_ciphertext": seal(key, _pii_json(merged), f"profile:{uid}"),
                "language_code": merged.language_code,
                "region_code": merged.region_code,
                "consents": _consents_json(merged, now),
                "updated_us": now,
            }
            if row is None:
                conn.execute(
                    insert(profiles).values(unified_id=uid, version=1, created_us=now, **values)
                )
            else:
                conn.execute(
                    update(profiles)
                    .where(profiles.c.unified_id == uid)
                    .values(version=row.version + 1, **values)
                )
            _audit(conn, caller, "UpsertProfile", uid, "write")
            fresh = conn.execute(select(profiles).where(profiles.c.unified_id == uid)).one()
            return self._decode(fresh, key), row is None

        return self._db.run(work, write=True, retry_on_conflict=True)

    def get(self, uid: str, caller: str) -> profile_pb2.Profile:
        def work(conn: Connection) -> profile_pb2.Profile:
            row = conn.execute(select(profiles).where(profiles.c.unified_id == uid)).first()
            key = self._data_key(conn, uid)
            if row is None or key is None:
                raise NotFound(f"no profile for {uid}")
            _audit(conn, caller, "GetProfile", uid, "read")
            return self._decode(row, key)

        return self._db.run(work, write=True)

    # ---- erasure -----------------------------------------------------------------------
    def erase(self, uid: str, reason: str, caller: str) -> Erased:
        def work(conn: Connection) -> Erased:
            person = conn.execute(
                select(unified_ids).where(unified_ids.c.unified_id == uid)
            ).first()
            if person is None:
                raise NotFound(f"unknown unified id {uid}")
            done = conn.execute(select(erasures).where(erasures.c.unified_id == uid)).first()
            if done is not None:
                return Erased(done.erasure_id, done.created_us, True)
            now = now_us()
            # Crypto-shredding: without the wrapped data key the ciphertext is noise. The
            # ciphertext is dropped too; SQLite's secure_delete overwrites both in the file.
            conn.execute(delete(data_keys).where(data_keys.c.unified_id == uid))
            conn.execute(delete(profiles).where(profiles.c.unified_id == uid))
            conn.execute(delete(identities).where(identities.c.unified_id == uid))
            conn.execute(
                update(unified_ids).where(unified_ids.c.unified_id == uid).values(erased_us=now)
            )
            erasure_id = "era_" + secrets.token_hex(12)
            conn.execute(
                insert(erasures).values(
                    erasure_id=erasure_id,
                    unified_id=uid,
                    pseudonymous_id=self._keys.pseudonym(uid),
                    reason=reason,
                    caller=caller,
                    created_us=now,
                )
            )
            _audit(conn, caller, "EraseProfile", uid, "erase")
            return Erased(erasure_id, now, False)

        erased = self._db.run(work, write=True, retry_on_conflict=True)
        if not erased.already:
            self._db.purge_deleted(["data_keys", "profiles", "identities"])
        return erased

    # ---- helpers -----------------------------------------------------------------------
    def _data_key(self, conn: Connection, uid: str) -> bytes | None:
        """The person's data key, or None when they have none (never written, or erased)."""
        row = conn.execute(select(data_keys).where(data_keys.c.unified_id == uid)).first()
        return None if row is None else self._keys.unwrap_data_key(row.wrapped_key, uid)

    def _data_key_for_write(self, conn: Connection, uid: str) -> bytes:
        """The person's data key, created (and stored wrapped) on their first write."""
        existing = self._data_key(conn, uid)
        if existing is not None:
            return existing
        key = new_data_key()
        conn.execute(
            insert(data_keys).values(
                unified_id=uid,
                wrapped_key=self._keys.wrap_data_key(key, uid),
                master_key_id=self._keys.master_key_id,
                created_us=now_us(),
            )
        )
        return key

    def _decode(self, row: Any, key: bytes) -> profile_pb2.Profile:
        profile = profile_pb2.Profile(
            unified_id=row.unified_id,
            language_code=row.language_code,
            region_code=row.region_code,
            version=row.version,
            create_time=to_timestamp(row.created_us),
            update_time=to_timestamp(row.updated_us),
        )
        pii = json.loads(unseal(key, row.pii_ciphertext, f"profile:{row.unified_id}"))
        for name in PII_FIELDS:
            setattr(profile, name, pii.get(name, ""))
        if pii.get("birth_date"):
            year, month, day = pii["birth_date"]
            profile.birth_date.CopyFrom(common_pb2.Date(year=year, month=month, day=day))
        for consent in row.consents:
            entry = profile.consents.add(
                channel=profile_pb2.ContactChannel.Value(consent["channel"]),
                granted=consent["granted"],
            )
            entry.update_time.CopyFrom(to_timestamp(consent["update_us"]))
        return profile


def _require_live(conn: Connection, uid: str) -> None:
    person = conn.execute(select(unified_ids).where(unified_ids.c.unified_id == uid)).first()
    if person is None or person.erased_us is not None:
        raise NotFound(f"unknown or erased unified id {uid}")


def _merge(conn: Connection, loser: str, survivor: str, now: int) -> None:
    conn.execute(
        update(identities).where(identities.c.unified_id == loser).values(unified_id=survivor)
    )
    conn.execute(
        update(unified_ids)
        .where((unified_ids.c.unified_id == loser) | (unified_ids.c.merged_into == loser))
        .values(merged_into=survivor)
    )
    conn.execute(insert(identity_merges).values(from_id=loser, into_id=survivor, created_us=now))


def _apply(
    current: profile_pb2.Profile, incoming: profile_pb2.Profile, paths: set[str]
) -> profile_pb2.Profile:
    """The profile after writing `paths` of `incoming` over `current` (pure)."""
    merged = profile_pb2.Profile()
    merged.CopyFrom(current)
    for path in paths:
        if path == "consents":
            del merged.consents[:]
            merged.consents.extend(incoming.consents)
        elif path == "birth_date":
            merged.ClearField("birth_date")
            if incoming.HasField("birth_date"):
                merged.birth_date.CopyFrom(incoming.birth_date)
        else:
            setattr(merged, path, getattr(incoming, path))
    return merged


def _pii_json(profile: profile_pb2.Profile) -> bytes:
    data: dict[str, Any] = {name: getattr(profile, name) for name in PII_FIELDS}
    if profile.HasField("birth_date"):
        b = profile.birth_date
        data["birth_date"] = [b.year, b.month, b.day]
    return json.dumps(data, sort_keys=True).encode()


def _consents_json(profile: profile_pb2.Profile, now: int) -> list[dict[str, Any]]:
    return [
        {
            "channel": profile_pb2.ContactChannel.Name(c.channel),
            "granted": c.granted,
            "update_us": c.update_time.ToMicroseconds() if c.HasField("update_time") else now,
        }
        for c in profile.consents
    ]


def _audit(conn: Connection, caller: str, method: str, uid: str, action: str) -> None:
    conn.execute(
        insert(audit_log).values(
            at_us=now_us(), caller=caller, method=method, unified_id=uid, action=action
        )
    )
