"""A ranking replica's health as Serve's check sees it: failed refreshes in a row make it
unhealthy, one success makes it healthy again, and what is reported names the error's type
and place but never its message."""

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


def test_a_replica_is_unhealthy_only_after_the_configured_failures_in_a_row() -> None:
    health = RefreshHealth(unhealthy_after=3)
    for _ in range(2):
        health.failed(failure())
        assert health.problem is None
    health.failed(failure())
    assert health.problem is not None
    assert "3 times in a row" in health.problem


def test_one_good_refresh_makes_it_healthy_again() -> None:
    health = RefreshHealth(unhealthy_after=2)
    health.failed(failure())
    health.succeeded()
    health.failed(failure())
    assert health.problem is None  # not two in a row
    health.failed(failure())
    assert health.problem is not None
    health.succeeded()
    assert (health.problem, health.failures, health.last_failure) == (None, 0, None)


def test_what_is_reported_names_the_type_and_place_never_the_message() -> None:
    health = RefreshHealth(unhealthy_after=1)
    health.failed(failure("token=abc123 in /secret/path"))
    assert health.problem is not None
    assert "OSError at test_ads_replica_health.py:" in health.problem
    assert "abc123" not in health.problem
    assert "/secret/path" not in health.problem
    assert describe(ValueError("x")) == "ValueError"  # never raised: no frame to name


def test_the_threshold_is_part_of_the_validated_config() -> None:
    assert AdsConfig().unhealthy_after_failed_refreshes == 5
    with pytest.raises(ValueError, match="unhealthy_after_failed_refreshes"):
        AdsConfig(unhealthy_after_failed_refreshes=0)
