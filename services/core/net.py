"""Network addresses and TLS material (foundation types every zone and the gateway share)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Strict):
    """A host and port a server listens on or a client dials."""

    host: str = Field(description="IP address or DNS name. Local runs keep this on loopback.")
    port: int = Field(ge=0, le=65535, description="TCP port; 0 asks the OS for a free one.")

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOST.match(value):
                raise ValueError(
                    f"host {value!r} is neither an IP address nor a DNS name"
                ) from None
        return value

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Read "host:port" or "[v6]:port"."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"endpoint {text!r} is not host:port")
        return cls(host=host.strip("[]"), port=int(port))

    @property
    def address(self) -> str:
        """The gRPC target form, "host:port" (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class TlsConfig(_Strict):
    """TLS material for a listener or a client. Paths only: keys never live in config."""

    enabled: bool = Field(default=False, description="Serve or dial with TLS.")
    ca_file: Path | None = Field(
        default=None, description="PEM bundle that signs the peers' certificates."
    )
    cert_file: Path | None = Field(default=None, description="PEM certificate chain of this side.")
    key_file: Path | None = Field(default=None, description="PEM private key of this side.")
    require_client_cert: bool = Field(
        default=False, description="Listener only: demand and verify a client certificate (mTLS)."
    )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if not self.enabled:
            return self
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: cert_file and key_file must be given together")
        if self.require_client_cert and (self.ca_file is None or self.cert_file is None):
            raise ValueError("tls: require_client_cert needs ca_file, cert_file and key_file")
        return self
