"""Per-event validation (pure): a reason naming the field, or None for a good event."""

from __future__ import annotations

import re

from isthmus.events.v1 import events_pb2
from services.core import pseudonym
from services.core.money import currency_problem
from services.core.pii_shapes import shape_of

EVENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
TOKEN = re.compile(r"^[A-Za-z0-9._:@/-]{0,128}$")
MAX_FUTURE_S = 300
MAX_BATCH = 1000


def event_problem(
    event: events_pb2.Event, now_s: float, check_key: bytes | None = None
) -> str | None:
    """Why the event cannot land (the field named, never its value), or None. `check_key`:
    the pseudonymous ids' check key (without it, their shape alone is checked)."""
    if not EVENT_ID.match(event.event_id):
        return "event_id: must be 1 to 128 characters of [A-Za-z0-9._:-]"
    if event.type == events_pb2.EVENT_TYPE_UNSPECIFIED:
        return "type: is required"
    if not event.HasField("event_time"):
        return "event_time: is required"
    if event.event_time.seconds > now_s + MAX_FUTURE_S:
        return f"event_time: is more than {MAX_FUTURE_S} s in the future"
    if not event.ad_id:
        return "ad_id: is required"
    for name in (
        "pseudonymous_user_id",
        "rank_request_id",
        "ad_id",
        "campaign_id",
        "placement_id",
        "model_version",
    ):
        value = getattr(event, name)
        if not TOKEN.match(value):
            return f"{name}: may only contain letters, digits and . _ : @ / - (max 128)"
        shape = shape_of(value)
        if shape is not None:  # the gateway refuses it first; this is the second line
            return f"{name}: looks like {shape}; personal data may not land in the public zone"
    wrong_id = pseudonym.problem(event.pseudonymous_user_id, check_key)
    if wrong_id is not None:  # the gateway refuses it first; this is the second line
        return f"pseudonymous_user_id: {wrong_id}"
    if event.HasField("conversion_value"):
        if event.type != events_pb2.EVENT_TYPE_CONVERSION:
            return "conversion_value: only for EVENT_TYPE_CONVERSION"
        problem = currency_problem(event.conversion_value.currency_code)
        if problem:
            return f"conversion_value.currency_code: {problem}"
        if event.conversion_value.amount_minor < 0:
            return "conversion_value.amount_minor: must not be negative"
    return None


def to_record(event: events_pb2.Event, ingest_s: float) -> dict[str, object]:
    """The landing-log row: flat, typed, no personal data (ids are pseudonymous)."""
    record: dict[str, object] = {
        "event_id": event.event_id,
        "type": events_pb2.EventType.Name(event.type).removeprefix("EVENT_TYPE_").lower(),
        "event_time_us": event.event_time.ToMicroseconds(),
        "ingest_time_us": int(ingest_s * 1_000_000),
        "pseudonymous_user_id": event.pseudonymous_user_id,
        "rank_request_id": event.rank_request_id,
        "ad_id": event.ad_id,
        "campaign_id": event.campaign_id,
        "placement_id": event.placement_id,
        "position": event.position,
        "model_version": event.model_version,
        "device_type": event.device_type,
        "channel": event.channel,
    }
    if event.HasField("conversion_value"):
        record["conversion_currency"] = event.conversion_value.currency_code
        record["conversion_value_minor"] = event.conversion_value.amount_minor
    return record
