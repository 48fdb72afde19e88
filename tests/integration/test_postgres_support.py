"""EphemeralPostgres must give a usable, loopback-only server and really go away on stop(),
since other tests rely on it for isolation."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from tests.support.postgres import EphemeralPostgres


def test_ephemeral_postgres_round_trip_and_stop(tmp_path: Path) -> None:
    with EphemeralPostgres(tmp_path) as pg:
        data_dir = pg.data_dir
        assert pg.url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/isthmus"
        engine = create_engine(pg.url)
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE widgets (id integer PRIMARY KEY, name text)"))
                conn.execute(text("INSERT INTO widgets VALUES (1, 'sprocket')"))
            with engine.connect() as conn:
                name = conn.execute(text("SELECT name FROM widgets WHERE id = 1")).scalar_one()
                assert name == "sprocket"
                listen = conn.execute(text("SHOW listen_addresses")).scalar_one()
                assert listen == "127.0.0.1"
        finally:
            engine.dispose()

        pg.stop()
        pg.stop()  # idempotent: a second stop must not raise

        # NullPool: a fresh connection attempt, not a pooled one.
        after = create_engine(pg.url, poolclass=NullPool, connect_args={"connect_timeout": 5})
        with pytest.raises(OperationalError), after.connect():
            pass
    assert not data_dir.exists()
    assert (tmp_path / "postgres.log").exists()
