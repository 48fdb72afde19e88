"""Retry and failover as a pure decision: after each attempt, or on finding a cluster with no
endpoint left to try, what the gateway does next. No I/O and no clock: the proxy gathers the
facts (the reply's status, whether the caller still waits and has time, whether the retry
budget allows another try) and acts on the step.

    ANSWER     pass this reply on (it succeeded, a stream already answered, or the status
               is not one the route retries)
    RETRY      another endpoint of the same cluster
    FAIL_OVER  the next cluster, in the route's order
    GIVE_UP    no more tries: the route's fallback answers if it has one, else this reply

A method the protos do not declare retry-safe gets one try: no retry, and no failover once
an attempt was made (a second cluster would be a retry); it still moves past clusters that
had no endpoint to try.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc


class Step(enum.Enum):
    ANSWER = "answer"
    RETRY = "retry"
    FAIL_OVER = "fail_over"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class Policy:
    """What a route allows one method (worked out once per routing snapshot)."""

    attempts_per_cluster: int  # 1: not retry-safe (or a client stream)
    clusters: int
    retry_on: frozenset[grpc.StatusCode]


@dataclass(frozen=True, slots=True)
class Position:
    """Where the call is: the cluster being tried, attempts made on it, any attempt made."""

    cluster: int
    attempts_here: int
    tried: bool


@dataclass(frozen=True, slots=True)
class Attempted:
    """How an attempt ended and what else the decision depends on."""

    code: grpc.StatusCode
    answered: bool  # a streamed response already went to the caller: never retried
    caller_cancelled: bool
    time_left: bool  # the call's deadline (caller's or route's) has not passed
    budget_allows: bool


def retriable(
    code: grpc.StatusCode, caller_cancelled: bool, retry_on: frozenset[grpc.StatusCode]
) -> bool:
    """The route's `retry_on` codes; a CANCELLED from upstream while the caller still waits
    means the upstream went away mid-call (a server stopping cancels its calls): as
    retriable as UNAVAILABLE."""
    if code is grpc.StatusCode.CANCELLED:
        return not caller_cancelled
    return code in retry_on


def after_attempt(result: Attempted, at: Position, policy: Policy) -> Step:
    """The step after an attempt at `at` ended with `result`."""
    if result.code is grpc.StatusCode.OK or result.answered:
        return Step.ANSWER
    if not retriable(result.code, result.caller_cancelled, policy.retry_on):
        return Step.ANSWER
    if not result.time_left or policy.attempts_per_cluster == 1 or not result.budget_allows:
        return Step.GIVE_UP
    if at.attempts_here < policy.attempts_per_cluster:
        return Step.RETRY
    return Step.FAIL_OVER if at.cluster + 1 < policy.clusters else Step.GIVE_UP


def after_no_endpoint(at: Position, policy: Policy, budget_allows: bool) -> Step:
    """The step when the cluster at `at` has no endpoint left to try."""
    if at.cluster + 1 >= policy.clusters:
        return Step.GIVE_UP
    if at.tried and (policy.attempts_per_cluster == 1 or not budget_allows):
        return Step.GIVE_UP  # going on would be a retry, which is not allowed
    return Step.FAIL_OVER
