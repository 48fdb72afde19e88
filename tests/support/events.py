"""Synthetic landing-log records for the Spark sync tests and benchmark (deterministic)."""

from __future__ import annotations

import json
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


def compact(rec: dict[str, object]) -> str:
    """A record as the event writer lines it (services/public/events/landing.py)."""
    return json.dumps(rec, separators=(",", ":"))


# Texts put where a landing line holds a value, raw (as JSON text, not encoded again).
ODD_VALUE_TEXTS = (
    '""',
    '"a b"',
    '"a\\"b"',
    '"a\\\\b"',
    '"a\\/b"',
    '"\\u0041"',
    '"\u00e9"',
    '"' + "x" * 128 + '"',
    '"' + "x" * 129 + '"',
    '"12"',
    '"-0"',
    "0",
    "-0",
    "7",
    "007",
    "00",
    "+1",
    "1.0",
    "1e3",
    "-",
    "999999999",
    "1000000000",
    "2147483647",
    "9" * 18,
    "9" * 19,
    "-" + "9" * 18,
    "true",
    "null",
    "[1]",
    '{"a":1}',
)


def line_corpus() -> list[str]:
    """Landing lines of every kind: the writer's own (some with the optional fields), and
    each field given odd values, left out, reordered, spaced, repeated or wrapped -- for the
    checks that the sync's fast way and long way judge every line alike."""
    written = records(30, users=["p_a", "p:b@c/d", ""], seed=11)
    conversion = next(r for r in written if "conversion_currency" in r)
    lines = [compact(r) for r in written]
    for base in (written[0], conversion):
        for name in base:
            for text in ODD_VALUE_TEXTS:
                lines.append(compact({**base, name: "@@"}).replace('"@@"', text))
            lines.append(compact({k: v for k, v in base.items() if k != name}))
        line = compact(base)
        lines += [
            json.dumps(base),  # the default separators: spaces
            compact(dict(reversed(list(base.items())))),
            compact({**base, "extra": 1}),
            line[:-1] + ',"event_id":"again"}',  # a repeated key
            line + "x",
            " " + line,
            "[" + line + "]",
        ]
    without = {k: v for k, v in conversion.items() if k != "conversion_value_minor"}
    lines += [compact(without), "", "null", "{}", "[]", "1"]
    lines += [line for line, _ in MALFORMED]
    return lines
