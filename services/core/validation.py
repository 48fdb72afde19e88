"""Request validation helpers: collect every problem, then raise one InvalidArgument.

Messages name the field and the rule, never the offending value (it may be personal data).
"""

from __future__ import annotations

import re

from services.core.errors import FieldViolation, InvalidArgument

TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")


class Violations:
    """Accumulates field violations; `raise_if_any()` ends validation."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def text(
        self, field: str, value: str, *, required: bool = True, max_len: int, min_len: int = 1
    ) -> bool:
        """Presence and length of a free-text field. True when it is valid."""
        if not value:
            if required:
                self.add(field, "is required")
            return not required
        if not min_len <= len(value) <= max_len:
            self.add(field, f"must be {min_len} to {max_len} characters (got {len(value)})")
            return False
        return True

    def token(
        self, field: str, value: str, *, required: bool = True, max_len: int, min_len: int = 1
    ) -> bool:
        """An identifier or key: length plus the character set [A-Za-z0-9._:@/-]."""
        if not self.text(field, value, required=required, max_len=max_len, min_len=min_len):
            return False
        if value and not TOKEN.match(value):
            self.add(field, "may only contain letters, digits and . _ : @ / -")
            return False
        return True

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)
