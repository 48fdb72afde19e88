"""Pseudonymous ids, the only name the public zones know a person by, in a format a door can
verify (pure).

    p_<26 body characters><4 check characters>        all of [a-z2-7] (base32, lower case)

- body: the first 128 bits of HMAC-SHA256(pseudonym key, unified id). Only the private zone
  holds the pseudonym key (derived from its `hmac_key`); without it an id links to no one.
- check: the first 20 bits of HMAC-SHA256(check key, "p_" + body). The check key is a secret
  of its own, shared by the private zone (which mints) and the doors that verify (the gateway,
  the event service). It lets them tell an id the private zone minted from a string a caller
  made up; it links nothing to anyone.

A raw identifier cannot pass: an e-mail address, a phone or card number or a name never has
this shape, and a caller who dresses one up in it (base32 of a phone number behind "p_")
still needs the check key; a random string passes the check with odds of 2^-20. Without a
check key, a door checks the shape alone, which already refuses every raw identifier; with
one, it also refuses ids it did not see minted.

An empty id is the anonymous viewer and is always allowed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

PREFIX = "p_"
BODY_CHARS = 26  # 128 bits
CHECK_CHARS = 4  # 20 bits
LENGTH = len(PREFIX) + BODY_CHARS + CHECK_CHARS
SHAPE = re.compile(rf"{PREFIX}[a-z2-7]{{{BODY_CHARS + CHECK_CHARS}}}", re.ASCII)  # fullmatch
FIELD_PREFIX = "pseudonymous_"  # a string field named pseudonymous_* holds one


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def check_chars(check_key: bytes, body: str) -> str:
    digest = hmac.new(check_key, (PREFIX + body).encode("ascii"), hashlib.sha256).digest()
    return _b32(digest[:5])[:CHECK_CHARS]


def mint(pseudonym_key: bytes, check_key: bytes, unified_id: str) -> str:
    """The pseudonymous id of a unified id (the private zone's keys)."""
    body = _b32(hmac.new(pseudonym_key, unified_id.encode(), hashlib.sha256).digest()[:16])
    return PREFIX + body + check_chars(check_key, body)


def problem(value: str, check_key: bytes | None) -> str | None:
    """Why `value` is not a pseudonymous id (never repeating the value), or None when it is
    one or is empty (anonymous). Without a check key only the shape is checked."""
    if not value:
        return None
    if not SHAPE.fullmatch(value):
        return (
            f"is not a pseudonymous id ({PREFIX} and {BODY_CHARS + CHECK_CHARS} characters "
            "of a-z and 2-7, as ResolveIdentity returns them)"
        )
    if check_key is not None:
        body, check = value[len(PREFIX) : -CHECK_CHARS], value[-CHECK_CHARS:]
        if not hmac.compare_digest(check, check_chars(check_key, body)):
            return "fails its check: not an id the private zone minted"
    return None


def with_legacy_forms(ids: set[str]) -> set[str]:
    """`ids` plus, for each id of this format, the form the private zone minted before the
    check characters existed (`p_` + the same body): rows landed before the format changed
    carry that one, and an erasure must reach them too (pure)."""
    legacy = {i[: len(PREFIX) + BODY_CHARS] for i in ids if SHAPE.fullmatch(i)}
    return ids | legacy


def is_pseudonym_field(name: str) -> bool:
    """Whether a field of this name carries a pseudonymous id (the contract's convention)."""
    return name.startswith(FIELD_PREFIX) and name.endswith("id")
