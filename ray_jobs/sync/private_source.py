"""What the export and the erasure read from the private database (SQLAlchemy; runs in the
private zone, which holds the key that turns unified ids into pseudonymous ids).

Only non-personal profile attributes are read: language, region and the consents. The
personal fields stay encrypted and are never selected. The tables are small next to the
event log, so they are read on the driver rather than through JDBC.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ray_jobs.sync.features_logic import personalization_allowed
from services.private.config import PrivateZoneConfig, keys_of
from services.private.db import migrate
from services.private.db.engine import Database
from services.private.db.tables import erasures, profiles, unified_ids
from services.private.keys import Keys


@dataclass(frozen=True, slots=True)
class ProfileAttributes:
    pseudonymous_user_id: str
    language_code: str
    region_code: str
    personalization_allowed: bool


@dataclass(frozen=True)
class PrivateInputs:
    profiles: list[ProfileAttributes]
    erased: list[str]  # pseudonymous ids of erased people
    unified_ids: frozenset[str]  # never to appear in anything the export writes


def read_private(config: PrivateZoneConfig) -> PrivateInputs:
    db = Database(config.resolved_database_url())
    try:
        migrate.upgrade(db)  # a fresh database gets the schema; a current one is untouched
        keys = keys_of(config)
        return _read(db, keys)
    finally:
        db.dispose()


def _read(db: Database, keys: Keys) -> PrivateInputs:
    live = (
        select(
            profiles.c.unified_id,
            profiles.c.language_code,
            profiles.c.region_code,
            profiles.c.consents,
        )
        .join(unified_ids, unified_ids.c.unified_id == profiles.c.unified_id)
        .where(unified_ids.c.erased_us.is_(None))
    )
    with db.transaction(write=False) as conn:
        rows = conn.execute(live).all()
        erased = [r.pseudonymous_id for r in conn.execute(select(erasures.c.pseudonymous_id))]
        every_id = frozenset(r.unified_id for r in conn.execute(select(unified_ids.c.unified_id)))
    attributes = [
        ProfileAttributes(
            keys.pseudonym(r.unified_id),
            r.language_code,
            r.region_code,
            personalization_allowed(r.consents),
        )
        for r in rows
    ]
    return PrivateInputs(attributes, sorted(erased), every_id)
