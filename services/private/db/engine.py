"""Database access for the private zone: one engine per process, SQLite or PostgreSQL.

SQLite (the embedded default) runs in WAL mode with `synchronous=FULL` (an acknowledged commit
survives a crash of the process or the machine), `secure_delete` (deleted key material is
overwritten in the file, which crypto-shredding relies on) and `BEGIN IMMEDIATE` for writes
(writers queue on the lock instead of failing with SQLITE_BUSY halfway through).
PostgreSQL runs at SERIALIZABLE; serialization failures and SQLite lock time-outs are retried.
A database that cannot be reached (stopped, restarting, in crash recovery, connection lost)
is UNAVAILABLE to the caller -- transient, retry later -- never INTERNAL; a write whose commit
was lost with the connection is safe to retry because every write is keyed (idempotency keys).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from services.core.errors import Unavailable

T = TypeVar("T")
_WRITE = "isthmus_write"
MAX_ATTEMPTS = 8


class Database:
    """An engine plus the transaction discipline every store uses."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = _sqlite_engine(url) if self.is_sqlite else _postgres_engine(url)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        """One transaction; commits on success, rolls back on any exception."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: write})
            with conn.begin():
                yield conn

    def run(
        self, work: Callable[[Connection], T], *, write: bool, retry_on_conflict: bool = False
    ) -> T:
        """Run `work` in a transaction, retrying on lock time-outs and serialization failures
        (the whole unit is re-run, so `work` must not have side effects outside the database).

        With `retry_on_conflict`, a unique-key violation is retried too: a concurrent twin
        inserted the same key between our read and our insert, and re-running finds its row.
        """
        conflicts = 0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self.transaction(write=write) as conn:
                    return work(conn)
            except IntegrityError:
                conflicts += 1
                if not retry_on_conflict or conflicts > 2:
                    raise
            except DBAPIError as exc:
                if _unreachable(exc):
                    raise Unavailable("the private database is unavailable; retry later") from exc
                if attempt == MAX_ATTEMPTS or not _retriable(exc):
                    raise
                time.sleep(min(0.2, 0.005 * 2**attempt) * random.random())  # noqa: S311
        raise AssertionError("unreachable")  # pragma: no cover

    def purge_deleted(self, tables: list[str]) -> None:
        """Push deleted rows out of places a file scan could still find them (after an erase).

        SQLite: `secure_delete` zeroes freed space in the main file, but the WAL keeps old page
        images until a checkpoint, so checkpoint and truncate it. PostgreSQL keeps dead row
        versions until VACUUM; vacuum the tables (this frees the space for reuse, it does not
        overwrite it: the wrapped key is gone from every live row, see the README).
        """
        if self.is_sqlite:
            raw = self.engine.raw_connection()
            try:
                raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                raw.close()
            return
        with self.engine.connect() as conn:
            autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
            autocommit.exec_driver_sql(f"VACUUM {', '.join(tables)}")

    def dispose(self) -> None:
        self.engine.dispose()


# SQLSTATE classes and codes of a server that is gone or not taking work: connection
# exceptions (08), operator intervention (57P01-57P03: shutdown, crash shutdown, starting up
# or recovering), insufficient resources (53: e.g. too many connections).
_UNREACHABLE_SQLSTATE = ("08", "57P01", "57P02", "57P03", "53")
_SQLITE_UNREACHABLE = ("unable to open database file", "disk i/o error")


def _unreachable(exc: DBAPIError) -> bool:
    """The database could not be reached or lost the connection (rather than refusing the
    statement): a connection never made has no SQLSTATE at all."""
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return str(sqlstate).startswith(_UNREACHABLE_SQLSTATE)
    message = str(exc.orig).lower()
    if isinstance(exc, OperationalError) and "database is locked" not in message:
        return any(m in message for m in _SQLITE_UNREACHABLE) or "connection" in message
    return False


def _retriable(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate in {"40001", "40P01"}  # serialization failure, deadlock detected


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            "secure_delete=ON",
            "busy_timeout=30000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgres_engine(url: str) -> Engine:
    return create_engine(
        url, isolation_level="SERIALIZABLE", pool_size=16, max_overflow=16, pool_pre_ping=True
    )
