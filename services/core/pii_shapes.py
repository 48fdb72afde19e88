"""Values shaped like personal data (pure): an e-mail address, a phone number, a payment card
number -- in any string field of a request, nested and repeated ones included.

The schema keeps `pii` fields away from PUBLIC methods, but a free-form string carries whatever
a careless caller puts in it. The gateway refuses such a PUBLIC request at the door and the
public services check their own fields again; both name the field, never the value.

Shapes, chosen so that the ids the platform uses (UUIDs, hex, "ad-12", "camp-3") never match:
- e-mail: `local@domain.tld`;
- card: 13 to 19 digits (spaces or dashes between groups allowed) passing the Luhn check;
- phone: an optional "+", then 10 to 15 digits with spaces, dots, dashes or parentheses
  between them; a run of digits glued to letters or to a dash on either side (a UUID's last
  group, "evt-1732960000123") is part of an id, not a number on its own, and one that starts
  as a date ("2026-11-30 07:45") is a time. A bare 10-15 digit string is taken for a phone
  number (ids here have letters); so is a dotted IPv4 address, itself personal data.

`suspect(raw)` is the cheap first look at a serialized request: when it finds nothing, the
request's bytes go through untouched and unparsed.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# ASCII only (re.ASCII), like the raw first look: digits in other scripts are not matched.
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", re.ASCII)
NUMBER = re.compile(r"(?<![\w-])\+?\(?\d(?:[ ().-]{0,2}\d){9,18}(?![\w-])", re.ASCII)
DATE = re.compile(r"(?:19|20)\d\d[-/.](?:0[1-9]|1[0-2])[-/.][0-3]\d", re.ASCII)
# The raw first look, all in C: an "@" before a dotted domain, or ten digits in a row once the
# separators a phone or card number may have are deleted (a superset of both shapes).
_RAW_EMAIL = re.compile(rb"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2}")
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
_SEPARATORS = b" ().-+"

EMAIL_SHAPE = "an e-mail address"
PHONE_SHAPE = "a phone number"
CARD_SHAPE = "a payment card number"


def suspect(raw: bytes) -> bool:
    """Whether a serialized message may hold a value of a personal shape (no false
    negatives: every value `shape_of` flags also makes this True)."""
    if b"@" in raw and _RAW_EMAIL.search(raw):
        return True
    return b"0000000000" in raw.translate(_DIGITS_AS_ZERO, _SEPARATORS)


def shape_of(value: str) -> str | None:
    """The personal-data shape `value` contains, or None."""
    found = _first_shape(value)
    return None if found is None else found[0]


def _first_shape(value: str) -> tuple[str, int] | None:
    """The first personal shape in `value` and where it starts."""
    if "@" in value:
        email = EMAIL.search(value)
        if email:
            return EMAIL_SHAPE, email.start()
    position = 0
    while (match := NUMBER.search(value, position)) is not None:
        date = DATE.match(value, match.start())
        if date:  # "2026-11-30 07:45" is a time; look again after the date, not past the run
            position = date.end()
            continue
        digits = re.sub(r"[^0-9]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            return CARD_SHAPE, match.start()
        if 10 <= len(digits) <= 15:
            return PHONE_SHAPE, match.start()
        position = match.end()
    return None


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def personal_field(message: Message) -> tuple[str, str] | None:
    """The first string field (by path, e.g. "events[2].placement_id") whose value has a
    personal shape, with that shape; None when there is none."""
    found = _strings(message, "")
    # One scan over every value, "\n" between them (no shape spans it); the match's offset
    # says which field it is in.
    joined = "\n".join(value for _, value in found)
    first = _first_shape(joined)
    if first is None:
        return None
    shape, at = first
    starts = list(itertools.accumulate((len(v) + 1 for _, v in found), initial=0))
    return found[bisect.bisect_right(starts, at) - 1][0], shape


_STR, _MSG, _MAP = "str", "msg", "map"
_PLANS: dict[str, tuple[tuple[str, str, bool, Any], ...]] = {}


def _plan(descriptor: Any) -> tuple[tuple[str, str, bool, Any], ...]:
    """The fields of a message type that can hold strings: (name, kind, repeated, map entry
    type), worked out once per type."""
    plan = _PLANS.get(descriptor.full_name)
    if plan is None:
        _PLANS[descriptor.full_name] = ()  # a message that contains itself
        items = []
        for field in descriptor.fields:
            if field.type == FieldDescriptor.TYPE_STRING:
                items.append((field.name, _STR, field.is_repeated, None))
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                entry = field.message_type
                if entry.GetOptions().map_entry:
                    items.append((field.name, _MAP, True, entry))
                else:
                    items.append((field.name, _MSG, field.is_repeated, None))
        plan = _PLANS[descriptor.full_name] = tuple(items)
    return plan


def strings(message: Message) -> list[tuple[str, str]]:
    """Every non-empty string in `message` (nested, repeated and map fields included) with its
    path, e.g. ("events[2].placement_id", "..."), in field order."""
    return _strings(message, "")


def field_name(path: str) -> str:
    """The field's own name from a path of `strings` ("events[2].pseudonymous_user_id" ->
    "pseudonymous_user_id"; a map key's path names no field: "")."""
    if path.endswith(" (key)"):
        return ""
    return path.rsplit(".", 1)[-1].split("[", 1)[0]


def has_field(descriptor: Any, wanted: Callable[[str], bool]) -> bool:
    """Whether a message type can carry a string field whose name `wanted` accepts, at any
    depth (worked out from the descriptors)."""
    seen: set[str] = set()

    def walk(d: Any) -> bool:
        if d.full_name in seen:
            return False
        seen.add(d.full_name)
        for name, kind, _, entry in _plan(d):
            if kind is _STR and wanted(name):
                return True
            if kind is _MSG and walk(d.fields_by_name[name].message_type):
                return True
            if kind is _MAP:
                value = entry.fields_by_name["value"]
                if value.type == FieldDescriptor.TYPE_MESSAGE and walk(value.message_type):
                    return True
        return False

    return walk(descriptor)


def _strings(message: Message, prefix: str) -> list[tuple[str, str]]:
    """Every non-empty string in `message` with its path, in field order."""
    out: list[tuple[str, str]] = []
    _collect(message, prefix, out)
    return out


def _collect(message: Any, prefix: str, out: list[tuple[str, str]]) -> None:
    for name, kind, repeated, entry in _plan(message.DESCRIPTOR):
        if kind is _STR:
            value = getattr(message, name)
            if not repeated:
                if value:
                    out.append((prefix + name, value))
            else:
                out.extend((f"{prefix}{name}[{i}]", v) for i, v in enumerate(value) if v)
        elif kind is _MSG:
            if not repeated:
                if message.HasField(name):
                    _collect(getattr(message, name), f"{prefix}{name}.", out)
            else:
                for i, item in enumerate(getattr(message, name)):
                    _collect(item, f"{prefix}{name}[{i}].", out)
        else:
            _collect_map(getattr(message, name), entry, f"{prefix}{name}", out)


def _collect_map(entries: Any, entry: Any, name: str, out: list[tuple[str, str]]) -> None:
    """Map entries are named by position: a key may itself be the personal value."""
    key_is_string = entry.fields_by_name["key"].type == FieldDescriptor.TYPE_STRING
    value_field = entry.fields_by_name["value"]
    for index, (key, value) in enumerate(entries.items()):
        if key_is_string and key:
            out.append((f"{name}[{index}] (key)", key))
        if value_field.type == FieldDescriptor.TYPE_STRING:
            if value:
                out.append((f"{name}[{index}]", value))
        elif value_field.type == FieldDescriptor.TYPE_MESSAGE:
            _collect(value, f"{name}[{index}].", out)
