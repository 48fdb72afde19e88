"""Synthetic landing-log records for the Spark sync tests and benchmark (deterministic)."""

from __future__ import annotations

import random

TYPES = ("impression", "impression", "impression", "impression", "click", "conversion")
BASE_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def record(event_id: str, user: str, rng: random.Random, now_us: int) -> dict[str, object]:
    """One landing record, shaped like services/public/events/validation.py::to_record."""
    kind = rng.choice(TYPES)
    rec: dict[str, object] = {
        "event_id": event_id,
        "type": kind,
        "event_time_us": now_us - rng.randrange(0, 20 * 86_400_000_000),
        "ingest_time_us": now_us,
        "pseudonymous_user_id": user,
        "rank_request_id": f"r{rng.randrange(10**9)}",
        "ad_id": f"ad{rng.randrange(200)}",
        "campaign_id": f"c{rng.randrange(20)}",
        "placement_id": "home",
        "position": rng.randrange(3),
        "model_version": "v1",
        "device_type": rng.randrange(1, 4),
        "channel": rng.randrange(1, 3),
    }
    if kind == "conversion":
        rec["conversion_currency"] = "EUR"
        rec["conversion_value_minor"] = rng.randrange(100, 10_000)
    return rec


def records(
    count: int, *, users: list[str], seed: int = 0, prefix: str = "e", now_us: int = BASE_US
) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [record(f"{prefix}{i}", rng.choice(users), rng, now_us) for i in range(count)]


# Lines the sync must quarantine, with the reason it must give.
MALFORMED: tuple[tuple[str, str], ...] = (
    ("this is not json", "line: not valid JSON"),
    ('{"event_id": "x1", "type": "impression"', "line: not valid JSON"),
    ('{"type": "click"}', "event_id: missing"),
    (
        '{"event_id": "bad id!", "type": "click"}',
        "event_id: not 1-128 characters of [A-Za-z0-9._:-]",
    ),
    ('{"event_id": "x2", "type": "view"}', "type: not one of impression|click|conversion"),
    (
        '{"event_id": "x3", "type": "click", "event_time_us": "yesterday"}',
        "event_time_us: not a 64-bit integer",
    ),
)
