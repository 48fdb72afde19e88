"""Configuration of the private zone's services."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.core.config import ServerConfig


class SecretRef(BaseModel):
    """Where a secret lives: an environment variable or a file. The value never sits in config,
    and this model never prints it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = Field(default=None, description="Name of an environment variable.")
    file: Path | None = Field(default=None, description="Path of a file holding the secret.")
    create_if_missing: bool = Field(
        default=False,
        description="Local runs only: when `file` does not exist, create it with 32 random bytes "
        "(mode 0600).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.env is None) == (self.file is None):
            raise ValueError("secret: give exactly one of env or file")
        return self

    def read(self) -> bytes:
        """The secret's bytes (hex in env vars; raw or hex in files). At least 32 bytes."""
        if self.env is not None:
            raw = os.environ.get(self.env, "").strip()
            if not raw:
                raise ValueError(f"secret: environment variable {self.env} is not set")
            value = bytes.fromhex(raw)
        else:
            assert self.file is not None
            if not self.file.exists() and self.create_if_missing:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32))
            try:
                data = self.file.read_bytes().strip()
            except OSError as exc:
                raise ValueError(f"secret: cannot read {self.file}: {exc.strerror}") from exc
            try:
                value = bytes.fromhex(data.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                value = data
        if len(value) < 32:
            raise ValueError(f"secret from {self.env or self.file} is shorter than 32 bytes")
        return value


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
