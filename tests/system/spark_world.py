"""A small private zone plus landing log for the Spark sync system tests."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from isthmus.profile.v1 import profile_pb2 as pb
from ray_jobs.sync.config import Locations
from services.private.config import PrivateZoneConfig, SecretRef, keys_of
from services.private.db import migrate
from services.private.db.engine import Database
from services.private.profile.store import ProfileStore
from services.public.events.landing import LandingLog
from services.topology.model import DataSpec
from tests.support.events import BASE_US, records

# (region, language, people): IT stays below k=5 and must be suppressed.
POPULATION = (("DE", "de-DE", 12), ("FR", "fr-FR", 9), ("IT", "it-IT", 3))
K = 5


@dataclass
class Person:
    unified_id: str
    pseudonym: str
    email: str
    phone: str
    region: str


@dataclass
class World:
    root: Path
    spec: DataSpec
    locs: Locations
    config: PrivateZoneConfig
    store: ProfileStore
    people: list[Person]
    refuser: Person  # refused personalised ads
    landing: LandingLog

    def write_topology(self) -> Path:
        """A topology file whose data section points into this world (for the CLI)."""
        path = self.root / "topology.yaml"
        data = self.spec.model_dump()
        lines = "\n".join(
            f"  {k}: {v!r}" if isinstance(v, str) else f"  {k}: {v}" for k, v in data.items()
        )
        path.write_text(
            "name: test\ngateway: {listen: {host: 127.0.0.1, port: 50051}}\n"
            "zones:\n  - {name: private, kind: private}\n"
            f"data:\n{lines}\n"
        )
        return path


def make_world(root: Path, **spec_overrides: object) -> World:
    spec = DataSpec(
        landing_uri=str(root / "landing"),
        warehouse_uri=str(root / "warehouse"),
        quarantine_uri=str(root / "quarantine"),
        checkpoint_uri=str(root / "checkpoints"),
        features_uri=str(root / "features"),
        k_anonymity=K,
        **spec_overrides,  # type: ignore[arg-type]
    )
    config = PrivateZoneConfig(
        database_url=f"sqlite:///{root / 'private.db'}",
        master_key=SecretRef(file=root / "master.key", create_if_missing=True),
        hmac_key=SecretRef(file=root / "hmac.key", create_if_missing=True),
    )
    db = Database(config.database_url)
    migrate.upgrade(db)
    store = ProfileStore(db, keys_of(config))
    people = []
    for region, language, count in POPULATION:
        for i in range(count):
            email = f"{region.lower()}{i}.person@example.com"
            phone = f"+4917012345{len(people):02d}"
            resolved = store.resolve([("email", email)], create=True, caller="test")
            profile = pb.Profile(
                unified_id=resolved.unified_id,
                given_name=f"Name{i}",
                email=email,
                phone_number=phone,
                language_code=language,
                region_code=region,
            )
            store.upsert(
                profile,
                {"given_name", "email", "phone_number", "language_code", "region_code"},
                0,
                "test",
            )
            people.append(
                Person(resolved.unified_id, resolved.pseudonymous_id, email, phone, region)
            )
    refuser = people[0]
    refusal = pb.Profile(unified_id=refuser.unified_id)
    refusal.consents.add(channel=pb.CONTACT_CHANNEL_PERSONALIZED_ADS, granted=False)
    store.upsert(refusal, {"consents"}, 0, "test")
    return World(
        root,
        spec,
        Locations.from_spec(spec),
        config,
        store,
        people,
        refuser,
        LandingLog(root / "landing"),
    )


def land_events(world: World, count: int, seed: int, prefix: str) -> list[dict[str, object]]:
    """`count` events over everyone (plus a few anonymous pseudonyms) in one landing file."""
    users = [p.pseudonym for p in world.people] + ["p_anonymous1", "p_anonymous2"]
    batch = records(count, users=users, seed=seed, prefix=prefix, now_us=BASE_US)
    random.Random(seed).shuffle(batch)
    world.landing.append(batch)
    return batch
