"""What may leave the private zone in a feature snapshot (pure). Anything else fails the
export closed: a new column is a reviewed change to this file, never an accident."""

from __future__ import annotations

from collections.abc import Iterable

KEY = "pseudonymous_user_id"
# column -> Spark type name (DataType.typeName()). The order is the snapshot's column order.
ALLOWED: dict[str, str] = {
    KEY: "string",
    "impressions": "long",
    "clicks": "long",
    "conversions": "long",
    "ctr_smoothed": "double",
    "recency_bucket": "string",
    "segment": "string",
}
# pyarrow spelling of the same types, for checks on the written files.
ARROW_TYPES = {"string": "string", "long": "int64", "double": "double"}


class NotAllowlisted(Exception):
    """A column outside the allowlist (or with another type) was about to be published."""


def check_columns(columns: Iterable[tuple[str, str]], *, arrow: bool = False) -> None:
    """Raise NotAllowlisted unless `columns` (name, type) are exactly the allowlist."""
    expected = {name: ARROW_TYPES[kind] if arrow else kind for name, kind in ALLOWED.items()}
    actual = dict(columns)
    extra = sorted(set(actual) - set(expected))
    if extra:
        raise NotAllowlisted(f"columns not on the allowlist: {', '.join(extra)}")
    missing = sorted(set(expected) - set(actual))
    if missing:
        raise NotAllowlisted(f"allowlisted columns missing: {', '.join(missing)}")
    wrong = sorted(f"{n} is {actual[n]}, not {t}" for n, t in expected.items() if actual[n] != t)
    if wrong:
        raise NotAllowlisted("column types differ from the allowlist: " + "; ".join(wrong))


def manifest_columns() -> list[dict[str, str]]:
    return [{"name": name, "type": kind} for name, kind in ALLOWED.items()]
