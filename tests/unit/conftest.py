"""Unit tests are pure: they may not start Ray or open network listeners."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import ray
    except ImportError:  # pragma: no cover
        return

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("unit tests must not start Ray; put this test in tests/system")

    monkeypatch.setattr(ray, "init", refuse)
