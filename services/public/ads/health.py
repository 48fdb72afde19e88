"""What a ranking replica tells Serve's health check (pure: no Ray, no clock).

A replica is ready once its constructor has loaded a model, the rules and the features (Serve
sends it no call before that). After that it stays healthy while its background refresh can
look at the registry, the rules file and the feature snapshot; when the refresh fails
`unhealthy_after` times in a row (the registry unreachable, a volume gone), the replica
reports unhealthy and Serve replaces it, instead of one replica serving a stale model for as
long as it lives. A refused file (a broken model, rules that do not parse) is not a failed
refresh: the replica keeps serving what it had, and says so in its status.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass


@dataclass
class RefreshHealth:
    """Consecutive failed refreshes, and why the last one failed (the exception's type and
    where it was raised, never its message: messages can carry paths and values)."""

    unhealthy_after: int
    failures: int = 0
    last_failure: str | None = None

    def succeeded(self) -> None:
        self.failures = 0
        self.last_failure = None

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_failure = describe(exc)

    @property
    def problem(self) -> str | None:
        """Why the replica is unhealthy, or None."""
        if self.failures < self.unhealthy_after:
            return None
        return f"refresh failed {self.failures} times in a row (last: {self.last_failure})"


def describe(exc: BaseException) -> str:
    """An exception for a log line: its type and the innermost frame, without its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"
