"""Configuration of one gRPC server process (the foundation's part; services add their own)."""

from __future__ import annotations

import enum
import ipaddress
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.core.net import Endpoint, TlsConfig

MiB = 1024 * 1024


class TracesExporter(enum.StrEnum):
    """Where finished spans go."""

    NONE = "none"
    CONSOLE = "console"
    OTLP = "otlp"


class MetricsExporter(enum.StrEnum):
    """How metrics leave the process."""

    NONE = "none"
    PROMETHEUS = "prometheus"
    OTLP = "otlp"


class TelemetryConfig(BaseModel):
    """OpenTelemetry wiring. Off by default so tests and tools start nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_name: str = Field(default="isthmus", description="OTel `service.name` resource.")
    traces: TracesExporter = Field(default=TracesExporter.NONE, description="Span exporter.")
    metrics: MetricsExporter = Field(default=MetricsExporter.NONE, description="Metric exporter.")
    otlp_endpoint: str = Field(
        default="127.0.0.1:4317", description="OTLP/gRPC collector, when an exporter is otlp."
    )
    prometheus_listen: Endpoint = Field(
        default=Endpoint(host="127.0.0.1", port=9464),
        description="Where /metrics is served when metrics is prometheus.",
    )
    metric_export_interval_s: float = Field(
        default=15.0, gt=0, description="OTLP metric push period in seconds."
    )
    trace_sample_ratio: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of new traces recorded (by trace id). Parent-based: a call whose "
        "caller sampled its trace is always recorded, and trace context propagates whether "
        "recorded or not. Metrics see every call.",
    )


class CallerPolicy(BaseModel):
    """Whom to believe about who is calling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trusted_forwarders: frozenset[str] = Field(
        default=frozenset({"isthmus-gateway"}),
        description="Client-certificate names (CN or SAN) allowed to name the original caller "
        "in the x-isthmus-caller header: the gateway.",
    )
    trust_header_without_tls: bool = Field(
        default=False,
        description="Believe x-isthmus-caller on plaintext connections. Only for loopback or "
        "namespace-isolated local runs where the gateway is the only peer that can connect.",
    )
    trusted_peer_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = Field(
        default=(),
        description="Believe x-isthmus-caller on plaintext connections from these peer "
        "addresses only: the gateway's end of a link no one else can use (a zone namespace's "
        "one veth). Production uses mTLS and trusted_forwarders instead.",
    )


class ServerConfig(BaseModel):
    """One gRPC server: where it listens, how big messages may be, how it stops."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: Endpoint = Field(
        default=Endpoint(host="127.0.0.1", port=0), description="Bind address; port 0 = any free."
    )
    tls: TlsConfig = Field(default_factory=TlsConfig, description="Listener TLS / mTLS.")
    max_receive_message_bytes: int = Field(
        default=4 * MiB, ge=1024, le=256 * MiB, description="Largest request message accepted."
    )
    max_send_message_bytes: int = Field(
        default=16 * MiB, ge=1024, le=256 * MiB, description="Largest response message sent."
    )
    max_concurrent_rpcs: int | None = Field(
        default=None, ge=1, description="Calls beyond this get RESOURCE_EXHAUSTED; None = no cap."
    )
    shutdown_grace_s: float = Field(
        default=10.0, ge=0, le=300, description="On SIGTERM, time in-flight calls get to finish."
    )
    reflection: bool = Field(default=True, description="Serve grpc.reflection.v1alpha.")
    reuse_port: bool = Field(
        default=False,
        description="Bind with SO_REUSEPORT so several instances share the listen address "
        "(the kernel spreads connections). Off by default: a second server started by mistake "
        "on a taken port must fail, not silently take half the traffic.",
    )
    health_listen: Endpoint | None = Field(
        default=None,
        description="A second, plaintext listener serving only grpc.health.v1 (the same "
        "statuses): Kubernetes' native gRPC probe cannot speak TLS, so a TLS server gives its "
        "kubelet this port. None = health on the main listener only.",
    )
    caller: CallerPolicy = Field(default_factory=CallerPolicy, description="Caller identity.")
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig, description="OTel.")

    @model_validator(mode="after")
    def _plaintext_only_on_loopback(self) -> Self:
        trusts_plaintext = self.caller.trust_header_without_tls and not self.tls.enabled
        if trusts_plaintext and not self.listen.is_loopback:
            raise ValueError(
                f"caller.trust_header_without_tls needs a loopback listener without TLS "
                f"(listen.host is {self.listen.host}); enable tls or listen on 127.0.0.1"
            )
        return self
