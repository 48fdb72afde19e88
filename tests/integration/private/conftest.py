"""Private-zone servers on 127.0.0.1:0 against SQLite files (and PostgreSQL where asked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.core.config import ServerConfig
from services.private.app import build_server
from services.private.config import PrivateZoneConfig, SecretRef
from services.private.db.engine import Database


def private_config(tmp_path: Path, database_url: str | None = None) -> PrivateZoneConfig:
    return PrivateZoneConfig(
        database_url=database_url or f"sqlite:///{tmp_path / 'private.db'}",
        master_key=SecretRef(file=tmp_path / "master.key", create_if_missing=True),
        hmac_key=SecretRef(file=tmp_path / "hmac.key", create_if_missing=True),
        server=ServerConfig(),
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'private.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def private_server(loop_thread: Any, tmp_path: Path, database_url: str) -> Iterator[Any]:
    """(channel, config, db) for a server running orders and profile on `database_url`."""
    config = private_config(tmp_path, database_url)

    async def start() -> Any:
        server, port, runtime = build_server(config, ["orders", "profile"])
        await server.start()
        return server, port, runtime

    server, port, runtime = loop_thread.run(start())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel, config, runtime.db
    finally:
        channel.close()
        loop_thread.run(server.stop(0))
        runtime.close()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.support.postgres import EphemeralPostgres

    with EphemeralPostgres(tmp_path_factory.mktemp("pg")) as pg:
        yield pg


@pytest.fixture
def postgres_database(postgres_server: Any) -> str:
    """A fresh, empty schema per test: drop everything the previous test left."""
    url: str = postgres_server.url
    db = Database(url)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    db.dispose()
    return url
