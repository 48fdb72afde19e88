"""How long a call and each of its attempts may take (pure), in the Envoy manner:

- the caller's deadline is always honoured;
- a route timeout (`RouteConfig.timeout_s`, off by default) bounds the whole call, every
  attempt and back-off included, for every call shape; when it ends the call, the caller gets
  DEADLINE_EXCEEDED naming the route;
- a per-try timeout (`RouteConfig.per_try_timeout_s`, off by default) bounds one attempt only
  where another may follow it: a retry-safe unary call, or a retry-safe server-streaming call
  until its first response (after that nothing is retried, so the stream runs on). It ends the
  attempt as a gateway timeout (UNAVAILABLE), which lets the next attempt run.

So a call without a deadline through a route with default settings behaves as it would
direct: nothing in the gateway cuts it.
"""

from __future__ import annotations

from dataclasses import dataclass


class CallExpired(Exception):
    """The call's time ran out before another attempt could start."""


@dataclass(frozen=True, slots=True)
class CallClock:
    """The bounds on one call, as monotonic instants (None: no bound)."""

    caller_deadline: float | None
    route_deadline: float | None
    route_timeout_s: float | None = None

    @classmethod
    def start(
        cls, now: float, caller_remaining_s: float | None, route_timeout_s: float | None
    ) -> CallClock:
        return cls(
            None if caller_remaining_s is None else now + caller_remaining_s,
            None if route_timeout_s is None else now + route_timeout_s,
            route_timeout_s,
        )

    @property
    def deadline(self) -> float | None:
        """The earlier of the two bounds."""
        bounds = [b for b in (self.caller_deadline, self.route_deadline) if b is not None]
        return min(bounds) if bounds else None

    def route_binds(self) -> bool:
        """The route timeout, not the caller, ends the call if it runs out."""
        return self.route_deadline is not None and (
            self.caller_deadline is None or self.route_deadline < self.caller_deadline
        )

    def reserve(self, seconds: float) -> CallClock:
        """The same call with `seconds` kept back at its end (for a fallback answer)."""
        return CallClock(
            None if self.caller_deadline is None else self.caller_deadline - seconds,
            None if self.route_deadline is None else self.route_deadline - seconds,
            self.route_timeout_s,
        )

    def expired(self, now: float) -> bool:
        deadline = self.deadline
        return deadline is not None and now >= deadline


@dataclass(frozen=True, slots=True)
class AttemptTimeouts:
    """One attempt's bounds: `rpc_s` for the upstream call itself, `first_response_s` on a
    server stream's first response; `per_try_binds` when `rpc_s` is the per-try timeout
    rather than what is left of the call."""

    rpc_s: float | None
    first_response_s: float | None = None
    per_try_binds: bool = False


def attempt_timeouts(
    clock: CallClock,
    now: float,
    per_try_s: float | None,
    retry_safe: bool,
    server_streaming: bool,
) -> AttemptTimeouts:
    """The bounds of an attempt starting at `now`; CallExpired when the call has no time left."""
    deadline = clock.deadline
    remaining = None if deadline is None else deadline - now
    if remaining is not None and remaining <= 0:
        raise CallExpired("the call's time ran out in the gateway")
    per_try = per_try_s if retry_safe else None
    if per_try is None or (remaining is not None and remaining <= per_try):
        # No per-try bound, or the call's own time ends first: that, not a per-try timeout,
        # ends the attempt (DEADLINE_EXCEEDED, not a retriable UNAVAILABLE).
        return AttemptTimeouts(remaining)
    if server_streaming:  # only until the first response: the stream itself runs on
        return AttemptTimeouts(remaining, first_response_s=per_try)
    return AttemptTimeouts(per_try, per_try_binds=True)


def expiry_message(clock: CallClock, route: str) -> str:
    """What a caller is told when the call's time ran out in the gateway."""
    if clock.route_binds():
        return f"route {route}: no answer within its {clock.route_timeout_s:g}s route timeout"
    return "deadline expired in the gateway"
