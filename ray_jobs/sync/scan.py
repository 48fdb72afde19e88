"""Does a value look personal? (pure) Used by the export before it publishes and by the
scanner test over every file it wrote.

Patterns are deliberately broad (a false alarm fails an export; a miss leaks), but bounded by
non-alphanumerics so the digits inside a pseudonymous id ("p_" + base32) do not count.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

# Also used by Spark (Java regex): keep to syntax both engines read alike.
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# 8+ digits, optionally with +, spaces, dots, dashes or parentheses between them.
PHONE = r"(?<![A-Za-z0-9])\+?[0-9][0-9 ().-]{6,}[0-9](?![A-Za-z0-9])"
PATTERNS = {"e-mail": re.compile(EMAIL), "phone number": re.compile(PHONE)}
_DIGITS = re.compile(r"[0-9]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WORD = re.compile(r"[A-Za-z0-9_]+")


def pii_kind(value: str) -> str | None:
    """ "e-mail" or "phone number" when `value` contains something that looks like one."""
    if PATTERNS["e-mail"].search(value):
        return "e-mail"
    # A UUID (Spark's part-file names, request ids) can hold runs like "-4831-9275-" that read
    # as a phone number; it never is one.
    for match in PATTERNS["phone number"].finditer(_UUID.sub(" ", value)):
        if len(_DIGITS.findall(match.group())) >= 8:
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
