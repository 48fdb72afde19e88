"""Endpoint selection and passive health (pure): power-of-two-choices on in-flight calls,
outlier ejection with exponential back-off and a cap on the share of a cluster ejected,
and a retry budget (held through context managers)."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from services.gateway.config import Outcome, OutlierConfig, RetryBudgetConfig


@dataclass
class EndpointState:
    """What the gateway knows about one upstream endpoint."""

    address: str
    in_flight: int = 0
    consecutive_failures: int = 0
    ejected_until: float = 0.0
    ejection_count: int = 0
    healthy: bool = True  # from active health checks
    drained: bool = False  # by an operator
    removed: bool = False  # gone from the endpoints file: drains, then is forgotten

    def available(self, now: float) -> bool:
        return self.healthy and not self.drained and not self.removed and now >= self.ejected_until

    def ejected(self, now: float) -> bool:
        return now < self.ejected_until


def pick(
    endpoints: list[EndpointState], now: float, rng: random.Random, exclude: set[str]
) -> EndpointState | None:
    """Two random available endpoints, the one with fewer calls in flight (ties: the first).
    Slow endpoints accumulate in-flight calls and so receive fewer new ones."""
    candidates = [e for e in endpoints if e.available(now) and e.address not in exclude]
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    first, second = rng.sample(candidates, 2)
    return first if first.in_flight <= second.in_flight else second


def record_outcome(
    endpoints: list[EndpointState],
    endpoint: EndpointState,
    outcome: Outcome,
    now: float,
    config: OutlierConfig,
) -> bool:
    """Update passive health after an attempt; True when this outcome ejected the endpoint."""
    if outcome is Outcome.SUCCESS:
        endpoint.consecutive_failures = 0
        return False
    if outcome is Outcome.NEUTRAL:
        return False
    endpoint.consecutive_failures += 1
    if endpoint.consecutive_failures < config.consecutive_failures or endpoint.ejected(now):
        return False
    allowed = math.floor(len(endpoints) * config.max_ejection_percent / 100)
    already = sum(1 for e in endpoints if e.ejected(now))
    if already >= allowed:
        return False
    endpoint.ejection_count += 1
    duration = min(
        config.base_ejection_s * 2 ** (endpoint.ejection_count - 1), config.max_ejection_s
    )
    endpoint.ejected_until = now + duration
    endpoint.consecutive_failures = 0
    return True


@dataclass
class RetryBudget:
    """Retries in flight may not exceed a share of active calls (or a small floor)."""

    config: RetryBudgetConfig
    active: int = 0
    retries_active: int = 0

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """One call in progress (retries are budgeted as a share of these)."""
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

    @contextlib.contextmanager
    def attempt(self, is_retry: bool) -> Iterator[None]:
        """One attempt in progress; a retry holds a share of the budget while it runs."""
        if is_retry:
            self.retries_active += 1
        try:
            yield
        finally:
            if is_retry:
                self.retries_active -= 1

    def may_retry(self) -> bool:
        share = self.active * self.config.budget_percent / 100
        return self.retries_active < max(self.config.min_retry_concurrency, share)

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """Full-jitter exponential back-off for the `retry`-th retry (1-based)."""
        cap = min(self.config.max_backoff_s, self.config.initial_backoff_s * 2 ** (retry - 1))
        return rng.uniform(0, cap)
