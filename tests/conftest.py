"""Test tiers by folder: tests/unit (pure), tests/integration (real servers on 127.0.0.1:0,
real tools), tests/system (Ray, Spark, PostgreSQL, several processes). Each test gets its
tier's marker from its folder, so `-m unit` etc. select by tier."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_TIERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO_ROOT / "tests").parts
        if parts and parts[0] in _TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
