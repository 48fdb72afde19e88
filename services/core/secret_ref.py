"""Where a secret lives (a foundation type: the gateway, the zones and the data jobs all
reference secrets this way)."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
                _create(self.file)
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


def _create(path: Path) -> None:
    """A new key file, all or nothing: written under a temporary name, then linked into place,
    so processes starting together (the zones and gateways of `isthmus up` share some keys)
    never read a half-written file, and only the first one's key is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: use theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
