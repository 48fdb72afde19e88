"""Normalisation and validation of identifiers and profile fields (pure).

Error texts name the rule, never the value: the values here are personal data.
"""

from __future__ import annotations

import datetime as dt
import re

import phonenumbers

from isthmus.common.v1 import common_pb2
from isthmus.profile.v1 import profile_pb2
from services.core.validation import Violations

_EMAIL = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_REGION = re.compile(r"^[A-Z]{2}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_OPEN_ID = re.compile(r"^([a-z0-9][a-z0-9.-]{0,31}):(\S{1,200})$")
MAX_IDENTIFIERS = 16


def normalize_phone(raw: str, region: str) -> str:
    """E.164 form of a phone number; national numbers are read in `region`."""
    try:
        number = phonenumbers.parse(raw, region or None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        where = f" for region {region}" if region else " (give region_code for national numbers)"
        raise ValueError(f"is not a valid phone number{where}")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_email(raw: str) -> str:
    value = raw.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("is not a valid e-mail address")
    return value


def normalize_identifier(identifier: profile_pb2.Identifier, region: str) -> tuple[str, str]:
    """(kind, normalised value) of one identifier."""
    kind = identifier.WhichOneof("kind")
    if kind is None:
        raise ValueError("must set one of phone_number, email, device_id, open_id")
    raw = getattr(identifier, kind)
    if kind == "phone_number":
        return kind, normalize_phone(raw, region)
    if kind == "email":
        return kind, normalize_email(raw)
    if kind == "device_id":
        value = raw.strip().lower()
        if not 1 <= len(value) <= 128 or any(c.isspace() for c in value):
            raise ValueError("must be 1 to 128 characters without spaces")
        return kind, value
    match = _OPEN_ID.match(raw.strip())
    if not match:
        raise ValueError('must be "provider:subject"')
    return kind, f"{match.group(1)}:{match.group(2)}"


def resolve_identifiers(request: profile_pb2.ResolveIdentityRequest) -> list[tuple[str, str]]:
    """Validated, normalised, de-duplicated identifiers of a ResolveIdentity request."""
    v = Violations()
    if request.region_code and not _REGION.match(request.region_code):
        v.add("region_code", "must be two upper-case letters (ISO 3166-1)")
    if not request.identifiers:
        v.add("identifiers", "at least one identifier is required")
    elif len(request.identifiers) > MAX_IDENTIFIERS:
        v.add("identifiers", f"at most {MAX_IDENTIFIERS} (got {len(request.identifiers)})")
    normalized: list[tuple[str, str]] = []
    for i, identifier in enumerate(request.identifiers[:MAX_IDENTIFIERS]):
        kind = identifier.WhichOneof("kind") or ""
        try:
            normalized.append(normalize_identifier(identifier, request.region_code))
        except ValueError as exc:
            v.add(f"identifiers[{i}]{'.' + kind if kind else ''}", str(exc))
    v.raise_if_any()
    return sorted(set(normalized))


def validate_profile(profile: profile_pb2.Profile, paths: set[str]) -> profile_pb2.Profile:
    """Check the fields named by `paths` and return a copy with phone and e-mail normalised."""
    v = Violations()
    out = profile_pb2.Profile()
    out.CopyFrom(profile)
    v.token("profile.unified_id", profile.unified_id, max_len=64)
    if "region_code" in paths and profile.region_code and not _REGION.match(profile.region_code):
        v.add("profile.region_code", "must be two upper-case letters (ISO 3166-1)")
    language = profile.language_code
    if (
        "language_code" in paths
        and language
        and (len(language) > 35 or not _LANGUAGE.match(language))
    ):
        v.add("profile.language_code", "must be a BCP 47 tag such as de-DE")
    for name in ("given_name", "family_name"):
        if name in paths:
            v.text(f"profile.{name}", getattr(profile, name), required=False, max_len=200)
    if "email" in paths and profile.email:
        try:
            out.email = normalize_email(profile.email)
        except ValueError as exc:
            v.add("profile.email", str(exc))
    if "phone_number" in paths and profile.phone_number:
        try:
            out.phone_number = normalize_phone(profile.phone_number, profile.region_code)
        except ValueError as exc:
            v.add("profile.phone_number", str(exc))
    if "birth_date" in paths and profile.HasField("birth_date"):
        problem = birth_date_problem(profile.birth_date)
        if problem:
            v.add("profile.birth_date", problem)
    if "consents" in paths:
        seen: set[int] = set()
        for i, consent in enumerate(profile.consents):
            if consent.channel == profile_pb2.CONTACT_CHANNEL_UNSPECIFIED:
                v.add(f"profile.consents[{i}].channel", "is required")
            elif consent.channel in seen:
                v.add(f"profile.consents[{i}].channel", "appears more than once")
            seen.add(consent.channel)
    v.raise_if_any()
    return out


def birth_date_problem(date: common_pb2.Date, today: dt.date | None = None) -> str | None:
    try:
        value = dt.date(date.year, date.month, date.day)
    except ValueError:
        return "is not a calendar date"
    today = today or dt.datetime.now(dt.UTC).date()
    if value > today:
        return "is in the future"
    if value.year < 1900:
        return "is before 1900"
    return None
