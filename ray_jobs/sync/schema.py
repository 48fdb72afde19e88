"""The landing record's schema and the rules a line must pass to enter the warehouse (pure).

Lines are parsed with every field as a string, then judged by the rules below, so a
malformed line gets a reason that names the field instead of silently becoming nulls. The
same rules run in Spark (`sync_events`, as Java regular expressions) and in plain Python
(`first_problem`, for tests and tools); patterns are written unanchored and without
line-terminator tricks so both engines read them alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Mirrors services/public/events/validation.py (the writer of the landing log).
EVENT_ID = r"[A-Za-z0-9._:-]{1,128}"
ID_TEXT = r"[A-Za-z0-9._:@/-]{0,128}"
NONEMPTY_ID_TEXT = r"[A-Za-z0-9._:@/-]{1,128}"
LONG = r"-?[0-9]{1,18}"  # always fits a signed 64-bit integer
INT = r"-?[0-9]{1,9}"  # always fits a signed 32-bit integer
EVENT_TYPES = ("impression", "click", "conversion")
CURRENCY = r"[A-Z]{3}"

# Characters of the raw line kept in the quarantine table.
MAX_QUARANTINED_LINE = 4096
REASON_NOT_JSON = "line: not valid JSON"
REASON_NOT_OBJECT = "line: not a JSON object"


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One landing field: its warehouse type and what its text must look like."""

    name: str
    spark_type: str  # "string" | "bigint" | "int"
    pattern: str
    required: bool = True
    what: str = ""  # the failure's wording, after "<name>: "

    @property
    def missing_reason(self) -> str:
        return f"{self.name}: missing"

    @property
    def invalid_reason(self) -> str:
        return f"{self.name}: {self.what}"


def _token(name: str, pattern: str = ID_TEXT) -> FieldRule:
    return FieldRule(name, "string", pattern, what="not a token of [A-Za-z0-9._:@/-] (max 128)")


FIELDS: tuple[FieldRule, ...] = (
    FieldRule("event_id", "string", EVENT_ID, what="not 1-128 characters of [A-Za-z0-9._:-]"),
    FieldRule("type", "string", "|".join(EVENT_TYPES), what="not one of " + "|".join(EVENT_TYPES)),
    FieldRule("event_time_us", "bigint", LONG, what="not a 64-bit integer"),
    FieldRule("ingest_time_us", "bigint", LONG, what="not a 64-bit integer"),
    _token("pseudonymous_user_id"),
    _token("rank_request_id"),
    _token("ad_id", NONEMPTY_ID_TEXT),
    _token("campaign_id"),
    _token("placement_id"),
    FieldRule("position", "int", INT, what="not a 32-bit integer"),
    _token("model_version"),
    FieldRule("device_type", "int", INT, what="not a 32-bit integer"),
    FieldRule("channel", "int", INT, what="not a 32-bit integer"),
    FieldRule(
        "conversion_currency", "string", CURRENCY, required=False, what="not an ISO 4217 code"
    ),
    FieldRule(
        "conversion_value_minor", "bigint", LONG, required=False, what="not a 64-bit integer"
    ),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)

# The warehouse event table: the typed landing fields, the UTC event date (partition
# column) and the landing file each row came from (lineage).
WAREHOUSE_EXTRA = (("event_date", "date"), ("source_file", "string"))
# Parquet writer options of the event table: no dictionary for the columns that hold (nearly)
# one value per event. A dictionary there only fills up and falls back to plain encoding in
# every file, and the table has one file per event date per task: it was a fifth of the
# sync's task time (README, Data sync). Readers are unaffected.
EVENTS_WRITE_OPTIONS = {
    f"parquet.enable.dictionary#{name}": "false"
    for name in ("event_id", "rank_request_id", "event_time_us")
}
QUARANTINE_COLUMNS = (("source_file", "string"), ("line", "string"), ("reason", "string"))


def java_pattern(rule: FieldRule) -> str:
    r"""The rule's pattern for Spark's `rlike` (Java; `rlike` finds, so anchor it; `\z` is the
    absolute end, where `$` would also accept a trailing newline)."""
    return rf"^(?:{rule.pattern})\z"


# Joining the fields for the one-match check (`whole_line_pattern`): no rule's pattern
# accepts either character, so a value holding one cannot shift the fields into a match.
SEPARATOR = "\x01"
ABSENT = "\x02"  # stands for an optional field that is absent
PRESENT = "\x03"  # prefixes an optional field's value (so a value cannot pose as ABSENT)


def whole_line_pattern(rules: tuple[FieldRule, ...] = FIELDS) -> str:
    r"""One Java (and Python) pattern that the fields joined by SEPARATOR (an optional field
    as PRESENT + its value, or ABSENT) match exactly when every rule passes (pure)."""
    parts = [
        f"(?:{rule.pattern})" if rule.required else f"(?:{PRESENT}(?:{rule.pattern})|{ABSENT})"
        for rule in rules
    ]
    return "^" + SEPARATOR.join(parts) + r"\z"


# The event writer's own form of a line (services/public/events/landing.py): compact JSON,
# keys in FIELDS order with the optional ones last, both or neither present. A line of that
# form whose values pass every rule and need no JSON escape is matched, and its values
# captured, by one match of `canonical_line_pattern`, without a JSON parse. Each JSON integer
# form below accepts a subset of its rule's text (no leading zero, at most the rule's
# digits), so such a line is exactly one that the parse and the rules would accept, with the
# same text (only "-0", which the parse reads as "0"; both cast to 0).
JSON_INTEGER = {"bigint": r"-?(?:0|[1-9][0-9]{0,17})", "int": r"-?(?:0|[1-9][0-9]{0,8})"}


def canonical_order(rules: tuple[FieldRule, ...] = FIELDS) -> tuple[FieldRule, ...]:
    """The fields in the order a canonical line holds them: required, then optional."""
    return tuple(r for r in rules if r.required) + tuple(r for r in rules if not r.required)


def canonical_line_pattern(rules: tuple[FieldRule, ...] = FIELDS) -> str:
    r"""A Java (and Python, with `\Z`) pattern for a canonical line that passes every rule,
    with one group per field in `canonical_order` (pure). An absent optional field's group
    is empty: no optional field's rule accepts "". Any other line is judged the long way."""

    def member(rule: FieldRule) -> str:
        if rule.spark_type == "string":
            return f'"{rule.name}":"({rule.pattern})"'
        return f'"{rule.name}":({JSON_INTEGER[rule.spark_type]})'

    required = ",".join(member(r) for r in rules if r.required)
    optional = ",".join(member(r) for r in rules if not r.required)
    tail = f"(?:,{optional})?" if optional else ""
    return r"^\{" + required + tail + r"\}\z"


def canonical_join(rules: tuple[FieldRule, ...] = FIELDS) -> str:
    """The replacement that turns a canonical line into its values joined by SEPARATOR."""
    return SEPARATOR.join(f"${i}" for i in range(1, len(rules) + 1))


def python_pattern(java: str) -> str:
    r"""One of these Java patterns for Python's `re` (whose absolute end is `\Z`, not `\z`)."""
    return java.replace(r"\z", r"\Z")


def canonical_values(line: str) -> dict[str, str] | None:
    """`canonical_line_pattern` applied in Python, as Spark applies it to a line of valid
    UTF-8: the fields' text of a canonical line (an absent optional field left out), or None
    for any other line (for tests and tools)."""
    found = re.search(python_pattern(canonical_line_pattern()), line)
    if found is None:
        return None
    values = zip(canonical_order(), found.groups(), strict=True)
    return {rule.name: value for rule, value in values if value is not None}


def passes_every_rule(raw: Mapping[str, str | None]) -> bool:
    """`whole_line_pattern` applied in Python, as Spark applies it (for tests and tools)."""
    parts: list[str] = []
    for rule in FIELDS:
        value = raw.get(rule.name)
        if value is not None:
            parts.append(value if rule.required else PRESENT + value)
        elif not rule.required:
            parts.append(ABSENT)  # a required field that is absent is skipped, as concat_ws
    joined = SEPARATOR.join(parts)
    return re.search(python_pattern(whole_line_pattern()), joined) is not None


def first_problem(raw: Mapping[str, str | None] | None) -> str | None:
    """The reason a parsed line (every field as text, None when absent) is rejected, or None.

    `raw` is None when the line was not JSON at all. Rules are checked in FIELDS order and
    the first failure wins, as in Spark.
    """
    if raw is None:
        return REASON_NOT_JSON
    for rule in FIELDS:
        value = raw.get(rule.name)
        if value is None:
            if rule.required:
                return rule.missing_reason
            continue
        if re.fullmatch(rule.pattern, value) is None:
            return rule.invalid_reason
    return None
