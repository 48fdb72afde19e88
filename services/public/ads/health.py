"""What a ranking replica tells Serve's health check (pure: the time is passed in).

A replica is ready once its constructor has loaded a model, the rules and the features (Serve
sends it no call before that). After that it stays healthy while its background refresh keeps
finishing: a refresh that raised (an I/O error reading the registry, the rules or the
snapshot) or one that hangs (a stuck volume) does not count, and when none has finished for
`stale_after_s` the replica reports unhealthy and Serve replaces it. A refused file (a broken
model, rules that do not parse, a missing file) is a finished refresh: the replica looked,
kept serving what it had, and says so in its status.

The trade-off: the cause is often shared (every replica reads the same registry), so every
replica turns unhealthy at about the same time, and a new replica cannot start without a
loadable model; ranking then falls back to the gateway's bid-only answer until the registry
is back. `stale_after_s` (5 refresh intervals by default) keeps short blips harmless.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass


@dataclass
class RefreshHealth:
    """When the last refresh finished, and why the refreshes since failed (the exception's
    type and where it was raised, never its message: messages can carry paths and values)."""

    stale_after_s: float
    last_finished_s: float
    failures: int = 0
    last_failure: str | None = None

    def finished(self, now_s: float) -> None:
        self.last_finished_s = now_s
        self.failures = 0
        self.last_failure = None

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_failure = describe(exc)

    def problem(self, now_s: float) -> str | None:
        """Why the replica is unhealthy at `now_s`, or None."""
        stale_s = now_s - self.last_finished_s
        if stale_s <= self.stale_after_s:
            return None
        why = (
            f"{self.failures} failed in a row, last: {self.last_failure}"
            if self.failures
            else "the last one has not returned"
        )
        return f"no refresh has finished for {stale_s:.0f}s ({why})"


def describe(exc: BaseException) -> str:
    """An exception for a log line: its type and the innermost frame, without its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"
