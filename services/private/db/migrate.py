"""Schema migrations with Alembic, driven from code (no alembic.ini to keep in sync).

upgrade(db)            bring the database to the newest revision (run at service start)
new_revision(db, msg)  autogenerate a revision from tables.py (for developers)
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from services.private.db.engine import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = db.engine
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    command.upgrade(alembic_config(db), revision)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        revision: str | None = MigrationContext.configure(conn).get_current_revision()
        return revision


def head_revision(db: Database) -> str | None:
    head: str | None = ScriptDirectory.from_config(alembic_config(db)).get_current_head()
    return head


def new_revision(db: Database, message: str) -> None:
    command.revision(alembic_config(db), message=message, autogenerate=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m services.private.db.migrate --config private.yaml`: upgrade to head and
    print the revision (the chart's pre-install/pre-upgrade hook Job)."""
    import argparse

    import yaml

    from services.private.config import PrivateZoneConfig

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--config", type=Path, required=True, help="PrivateZoneConfig YAML")
    args = parser.parse_args(argv)
    config = PrivateZoneConfig.model_validate(yaml.safe_load(args.config.read_text()) or {})
    db = Database(config.resolved_database_url())
    try:
        upgrade(db)
        print(f"schema at revision {current_revision(db)}")
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
