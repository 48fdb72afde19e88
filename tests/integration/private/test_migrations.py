"""The Alembic migrations build exactly the schema that tables.py declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from services.private.db import migrate
from services.private.db.engine import Database
from services.private.db.tables import metadata


def test_migrations_match_tables_and_rerun_is_a_no_op(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert migrate.current_revision(db) is None
        migrate.upgrade(db)
        migrate.upgrade(db)  # a second start changes nothing
        assert migrate.current_revision(db) == migrate.head_revision(db)
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
        assert diff == []
    finally:
        db.dispose()
