"""The event service's one validated config model (`isthmus serve events --config FILE`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from services.core.config import ServerConfig
from services.core.secret_ref import SecretRef


class EventsConfig(BaseModel):
    """Where the service listens (and how: TLS, health listener), where it lands events, and
    how many threads write them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: ServerConfig = Field(default_factory=ServerConfig)
    landing_dir: Path = Field(
        default=Path("var/public/landing"),
        description="The landing log: one fsynced JSON-lines file per accepted batch.",
    )
    pseudonym_check_key: SecretRef | None = Field(
        default=None,
        description="The check key of pseudonymous ids (the private zone's): an id it did not "
        "mint is rejected. Unset: only their shape is checked.",
    )
    writer_threads: int = Field(
        default=4, ge=1, le=64, description="Threads that write and fsync landing files."
    )
