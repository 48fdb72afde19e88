"""Configuration of the private zone's services."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from services.core.config import ServerConfig
from services.core.secret_ref import SecretRef
from services.private.keys import Keys


class PrivateZoneConfig(BaseModel):
    """Settings shared by ProfileService and OrderService."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = Field(
        default="sqlite:///var/private/private.db",
        description="SQLAlchemy URL: sqlite:///PATH (WAL) or postgresql+psycopg://...",
    )
    database_url_env: str | None = Field(
        default=None,
        description="Read the URL from this environment variable instead, so a URL with a "
        "password never sits in a config file or a command line.",
    )
    database_url_file: Path | None = Field(
        default=None,
        description="Read the URL from this file instead (Kubernetes: a Secret mounted as a "
        "file, which child processes do not inherit the way they inherit the environment).",
    )
    master_key: SecretRef = Field(
        default=SecretRef(file=Path("var/private/secrets/master.key"), create_if_missing=True),
        description="Key-encryption key that wraps each person's data key.",
    )
    hmac_key: SecretRef = Field(
        default=SecretRef(file=Path("var/private/secrets/hmac.key"), create_if_missing=True),
        description="Root of the keyed hashes (identifiers, pseudonyms, request fingerprints).",
    )
    pseudonym_check_key: SecretRef | None = Field(
        default=None,
        description="The check key of pseudonymous ids (services/core/pseudonym.py), shared "
        "with the gateway and the event service, which verify ids with it. Unset: derived "
        "from hmac_key, and the doors can check only the ids' shape.",
    )
    db_threads: int = Field(
        default=8, ge=1, le=64, description="Worker threads that run blocking database calls."
    )
    server: ServerConfig = Field(default_factory=ServerConfig, description="gRPC server.")

    def resolved_database_url(self) -> str:
        """The URL to connect with: from `database_url_file` or `database_url_env` when set,
        else `database_url`."""
        if self.database_url_file is not None:
            try:
                url = self.database_url_file.read_text().strip()
            except OSError as exc:
                raise ValueError(
                    f"database_url_file: cannot read {self.database_url_file}: {exc.strerror}"
                ) from exc
            if not url:
                raise ValueError(f"database_url_file: {self.database_url_file} is empty")
            return url
        if self.database_url_env is None:
            return self.database_url
        url = os.environ.get(self.database_url_env, "").strip()
        if not url:
            raise ValueError(f"database_url_env: {self.database_url_env} is not set or empty")
        return url


def keys_of(config: PrivateZoneConfig) -> Keys:
    """The zone's keys, read from where its config says they live."""
    check = config.pseudonym_check_key.read() if config.pseudonym_check_key else None
    return Keys(config.master_key.read(), config.hmac_key.read(), check)
