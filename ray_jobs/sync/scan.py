"""Does a value look personal? (pure) Used by the export before it publishes and by the
scanner test over every file it wrote.

Patterns are deliberately broad (a false alarm fails an export; a miss leaks), but bounded by
non-alphanumerics so the digits inside a pseudonymous id ("p_" + base32) do not count.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from services.core.pii_shapes import luhn_ok

# Also used by Spark (Java regex): keep to syntax both engines read alike.
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# 8+ digits, optionally with +, spaces, dots, dashes or parentheses between them.
PHONE = r"(?<![A-Za-z0-9])\+?[0-9][0-9 ().-]{6,}[0-9](?![A-Za-z0-9])"
PATTERNS = {"e-mail": re.compile(EMAIL), "phone number": re.compile(PHONE)}
_DIGITS = re.compile(r"[0-9]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WORD = re.compile(r"[A-Za-z0-9_]+")
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS, MAX_CARD_DIGITS = 8, 15, 19


def pii_kind(value: str) -> str | None:
    """ "e-mail", "phone number" or "payment card number" when `value` contains something
    that looks like one. A run of digits is a phone number if it has 8 to 15 of them (E.164
    numbers have at most 15) and a card number if it has 13 to 19 passing the Luhn check; a
    longer run is neither (a uuid4 hex id of 32 digits, about 1 in 2.7 million, once failed
    the demo's scan as a "phone number")."""
    if PATTERNS["e-mail"].search(value):
        return "e-mail"
    # A UUID (Spark's part-file names, request ids) can hold runs like "-4831-9275-" that read
    # as a phone number; it never is one.
    for match in PATTERNS["phone number"].finditer(_UUID.sub(" ", value)):
        digits = "".join(_DIGITS.findall(match.group()))
        if 13 <= len(digits) <= MAX_CARD_DIGITS and luhn_ok(digits):
            return "payment card number"
        if MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS:
            return "phone number"
    return None


def findings(values: Iterable[object], forbidden: Collection[str] = ()) -> list[str]:
    """Problems in `values`: personal-looking text, or one of the `forbidden` identifiers
    (e.g. the private zone's unified ids) as a value or as a word inside one."""
    banned = set(forbidden)
    found = []
    for value in values:
        if not isinstance(value, str):
            continue
        kind = pii_kind(value)
        if kind:
            found.append(f"{kind}: {value[:3]}...")
        words = {value, *_WORD.findall(value)}
        hit = next(iter(words & banned), None)
        if hit:
            found.append(f"private identifier: {hit[:4]}...")
    return found
