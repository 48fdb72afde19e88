"""A ranking replica's health as Serve's check sees it: unhealthy once no refresh has
finished for the configured time (they raised, or one hangs), healthy again after one
finishes; what is reported names the error's type and place but never its message."""

from __future__ import annotations

import pytest

from services.public.ads.config import AdsConfig
from services.public.ads.health import RefreshHealth, describe

pytestmark = pytest.mark.unit


def failure(message: str = "registry /secret/path unreachable") -> OSError:
    try:
        raise OSError(message)
    except OSError as exc:
        return exc


def test_failed_refreshes_make_a_replica_unhealthy_only_once_it_is_stale() -> None:
    health = RefreshHealth(stale_after_s=10.0, last_finished_s=100.0)
    for _ in range(4):
        health.failed(failure())
    assert health.problem(110.0) is None  # four failures, but within the allowance
    problem = health.problem(110.5)
    assert problem is not None
    assert "4 failed in a row" in problem


def test_a_refresh_that_hangs_is_caught_too() -> None:
    health = RefreshHealth(stale_after_s=10.0, last_finished_s=100.0)
    assert health.problem(109.0) is None
    problem = health.problem(131.0)  # nothing raised, nothing finished
    assert problem is not None
    assert "has not returned" in problem
    assert "31s" in problem


def test_one_finished_refresh_makes_it_healthy_again() -> None:
    health = RefreshHealth(stale_after_s=10.0, last_finished_s=0.0)
    health.failed(failure())
    assert health.problem(20.0) is not None
    health.finished(20.0)
    assert (health.problem(25.0), health.failures, health.last_failure) == (None, 0, None)


def test_what_is_reported_names_the_type_and_place_never_the_message() -> None:
    health = RefreshHealth(stale_after_s=1.0, last_finished_s=0.0)
    health.failed(failure("token=abc123 in /secret/path"))
    problem = health.problem(5.0)
    assert problem is not None
    assert "OSError at test_ads_replica_health.py:" in problem
    assert "abc123" not in problem
    assert "/secret/path" not in problem
    assert describe(ValueError("x")) == "ValueError"  # never raised: no frame to name


def test_the_allowance_is_part_of_the_validated_config() -> None:
    assert AdsConfig().unhealthy_after_refresh_intervals == 5.0
    with pytest.raises(ValueError, match="unhealthy_after_refresh_intervals"):
        AdsConfig(unhealthy_after_refresh_intervals=1)
