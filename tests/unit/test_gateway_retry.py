"""Retry and failover decisions (services/gateway/retry.py), pure: single steps from a table,
then whole calls driven step by step against scripted upstream replies and a fake clock, and
the retry budget's context managers."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway.balancer import RetryBudget
from services.gateway.config import RetryBudgetConfig
from services.gateway.retry import (
    Attempted,
    Policy,
    Position,
    Step,
    after_attempt,
    after_no_endpoint,
)

pytestmark = pytest.mark.unit

OK, UNAVAILABLE = grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE
CANCELLED, INVALID = grpc.StatusCode.CANCELLED, grpc.StatusCode.INVALID_ARGUMENT
RETRY_ON = frozenset({UNAVAILABLE})
SAFE = Policy(attempts_per_cluster=2, clusters=2, retry_on=RETRY_ON)
UNSAFE = Policy(attempts_per_cluster=1, clusters=2, retry_on=RETRY_ON)


def attempted(code: grpc.StatusCode, **changes: bool) -> Attempted:
    facts = {"answered": False, "caller_cancelled": False, "time_left": True, "budget_allows": True}
    facts.update(changes)
    return Attempted(code, **facts)


@pytest.mark.parametrize(
    ("result", "at", "policy", "step"),
    [
        (attempted(OK), Position(0, 1, True), SAFE, Step.ANSWER),
        (attempted(INVALID), Position(0, 1, True), SAFE, Step.ANSWER),  # the caller's fault
        (attempted(UNAVAILABLE), Position(0, 1, True), SAFE, Step.RETRY),
        (attempted(UNAVAILABLE), Position(0, 2, True), SAFE, Step.FAIL_OVER),
        (attempted(UNAVAILABLE), Position(1, 2, True), SAFE, Step.GIVE_UP),  # last cluster
        (attempted(UNAVAILABLE), Position(0, 1, True), UNSAFE, Step.GIVE_UP),  # no 2nd try
        (attempted(UNAVAILABLE, answered=True), Position(0, 1, True), SAFE, Step.ANSWER),
        (attempted(UNAVAILABLE, time_left=False), Position(0, 1, True), SAFE, Step.GIVE_UP),
        (attempted(UNAVAILABLE, budget_allows=False), Position(0, 1, True), SAFE, Step.GIVE_UP),
        (attempted(CANCELLED), Position(0, 1, True), SAFE, Step.RETRY),  # upstream went away
        (attempted(CANCELLED, caller_cancelled=True), Position(0, 1, True), SAFE, Step.ANSWER),
    ],
)
def test_one_step_after_an_attempt(
    result: Attempted, at: Position, policy: Policy, step: Step
) -> None:
    assert after_attempt(result, at, policy) is step


@pytest.mark.parametrize(
    ("at", "policy", "budget", "step"),
    [
        (Position(0, 0, False), UNSAFE, True, Step.FAIL_OVER),  # nothing tried yet: go on
        (Position(0, 1, True), UNSAFE, True, Step.GIVE_UP),  # going on would be a retry
        (Position(0, 1, True), SAFE, True, Step.FAIL_OVER),
        (Position(0, 1, True), SAFE, False, Step.GIVE_UP),  # ... that the budget forbids
        (Position(1, 0, False), SAFE, True, Step.GIVE_UP),  # no cluster left
    ],
)
def test_one_step_when_a_cluster_has_no_endpoint(
    at: Position, policy: Policy, budget: bool, step: Step
) -> None:
    assert after_no_endpoint(at, policy, budget) is step


@dataclass
class Upstream:
    """Scripted replies per cluster (a cluster with no replies has no endpoint), a fake clock
    advanced by every attempt, and a budget that allows `retries` retries."""

    replies: list[list[grpc.StatusCode]]
    attempt_s: float = 0.1
    deadline_s: float = 10.0
    retries: int = 100
    now: float = 0.0
    tried: list[tuple[int, int]] = field(default_factory=list)


def drive(up: Upstream, policy: Policy) -> tuple[Step, grpc.StatusCode | None]:
    """A whole call, as the proxy runs it, on the decisions alone."""
    index, here, tried, last = 0, 0, False, None
    while True:
        endpoints = up.replies[index]
        budget = len(up.tried) - 1 < up.retries
        if here >= len(endpoints):
            step = after_no_endpoint(Position(index, here, tried), policy, budget)
        else:
            code = endpoints[here]
            up.tried.append((index, here))
            up.now += up.attempt_s
            tried, here, last = True, here + 1, code
            budget = len(up.tried) - 1 < up.retries
            facts = attempted(code, time_left=up.now < up.deadline_s, budget_allows=budget)
            step = after_attempt(facts, Position(index, here, tried), policy)
        if step in (Step.ANSWER, Step.GIVE_UP):
            return step, last
        if step is Step.FAIL_OVER:
            index, here = index + 1, 0


def test_a_retry_safe_call_tries_each_cluster_then_gives_up() -> None:
    up = Upstream([[UNAVAILABLE] * 3, [UNAVAILABLE] * 3])
    assert drive(up, SAFE) == (Step.GIVE_UP, UNAVAILABLE)
    assert up.tried == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_a_retry_answers_as_soon_as_one_succeeds() -> None:
    up = Upstream([[UNAVAILABLE, UNAVAILABLE], [OK]])
    assert drive(up, SAFE) == (Step.ANSWER, OK)
    assert up.tried == [(0, 0), (0, 1), (1, 0)]


def test_an_unsafe_call_is_tried_once_but_passes_clusters_without_endpoints() -> None:
    up = Upstream([[], [UNAVAILABLE, OK]])
    assert drive(up, UNSAFE) == (Step.GIVE_UP, UNAVAILABLE)
    assert up.tried == [(1, 0)]


def test_the_fake_clock_running_out_stops_the_retries() -> None:
    up = Upstream([[UNAVAILABLE] * 5, [OK]], attempt_s=0.3, deadline_s=0.7)
    assert drive(up, Policy(5, 2, RETRY_ON)) == (Step.GIVE_UP, UNAVAILABLE)
    assert len(up.tried) == 3  # at 0.3 s, 0.6 s, then 0.9 s is past the deadline


def test_an_empty_budget_means_no_retry() -> None:
    up = Upstream([[UNAVAILABLE, OK], [OK]], retries=0)
    assert drive(up, SAFE) == (Step.GIVE_UP, UNAVAILABLE)
    assert up.tried == [(0, 0)]


codes = st.sampled_from([OK, UNAVAILABLE, CANCELLED, INVALID, grpc.StatusCode.INTERNAL])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(codes, max_size=4), min_size=1, max_size=3),
    st.integers(1, 4),
    st.integers(0, 5),
)
def test_any_call_is_bounded_and_never_retries_what_it_must_not(
    replies: list[list[grpc.StatusCode]], attempts: int, retries: int
) -> None:
    policy = Policy(attempts, len(replies), RETRY_ON)
    up = Upstream(replies, retries=retries)
    step, last = drive(up, policy)
    assert len(up.tried) <= attempts * len(replies)
    assert len(up.tried) <= retries + 1
    if attempts == 1:
        assert len(up.tried) <= 1
    for n, (cluster, i) in enumerate(up.tried[:-1]):  # every try but the last was retriable
        assert replies[cluster][i] in (UNAVAILABLE, CANCELLED), (n, up.tried)
    if step is Step.ANSWER:
        assert last is not None
    if last is OK:
        assert step is Step.ANSWER


def test_the_budget_holds_calls_and_retries_only_while_they_run() -> None:
    budget = RetryBudget(RetryBudgetConfig(budget_percent=50, min_retry_concurrency=0))
    assert not budget.may_retry()
    with budget.call(), budget.call():
        assert budget.may_retry()  # one retry allowed for two calls
        with budget.attempt(is_retry=True):
            assert not budget.may_retry()
        assert budget.may_retry()
        with pytest.raises(RuntimeError), budget.attempt(is_retry=True):
            raise RuntimeError("an attempt that blew up still gives its share back")
        assert budget.retries_active == 0
    assert budget.active == 0
