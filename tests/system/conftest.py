"""System-test fixtures: real server processes, real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.private.db.engine import Database


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.support.postgres import EphemeralPostgres

    with EphemeralPostgres(tmp_path_factory.mktemp("pg")) as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'private.db'}"
    url: str = request.getfixturevalue("postgres_server").url
    db = Database(url)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    db.dispose()
    return url
