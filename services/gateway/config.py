"""Gateway configuration: one validated model, built from the topology plus a gateway file."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.adpolicy import SHIPPED_RULES_FILE, load_rules
from services.contract.teams import load_contract
from services.core.config import ServerConfig
from services.core.secret_ref import SecretRef
from services.gateway.jwks import load_jwks
from services.topology.model import Endpoint, TlsConfig, Topology, ZoneKind


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


HealthCheckKind = Literal["grpc_health", "serve_healthz", "none"]
SERVE_HEALTHZ = "/ray.serve.RayServeAPIService/Healthz"
# Status codes a route may retry on (never OK, nor the caller's own CANCELLED), and today's.
RetryCode = Literal[
    "UNAVAILABLE",
    "INTERNAL",
    "UNKNOWN",
    "DEADLINE_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "ABORTED",
    "DATA_LOSS",
]
DEFAULT_RETRY_ON: tuple[RetryCode, ...] = (
    "UNAVAILABLE",
    "INTERNAL",
    "UNKNOWN",
    "DEADLINE_EXCEEDED",
    "RESOURCE_EXHAUSTED",
)
# Named answers a route may give when none of its clusters can (registry: fallbacks.py).
FallbackName = Literal["none", "ads_bid_only"]


class OutlierConfig(_Strict):
    """Passive health: eject endpoints that keep failing."""

    consecutive_failures: int = Field(default=3, ge=1, description="Failures in a row to eject.")
    base_ejection_s: float = Field(default=5.0, gt=0, description="First ejection; doubles after.")
    max_ejection_s: float = Field(default=60.0, gt=0, description="Longest ejection.")
    max_ejection_percent: int = Field(
        default=50,
        ge=0,
        le=100,
        description="Most of a cluster that may be ejected at once. Envoy's 10% would keep a "
        "cluster that lost 30% of its endpoints sending to the dead ones; 50% lets it shed them "
        "while never ejecting a whole cluster on a shared-cause blip.",
    )


class HealthCheckConfig(_Strict):
    """Active health checks (each cluster says how: grpc.health.v1 or Serve's Healthz)."""

    interval_s: float = Field(default=1.0, gt=0, description="Time between checks.")
    timeout_s: float = Field(default=0.5, gt=0, description="Time allowed for one check.")
    unhealthy_threshold: int = Field(default=2, ge=1, description="Failed checks to mark down.")
    healthy_threshold: int = Field(default=1, ge=1, description="Passed checks to mark up.")


class CircuitBreakerConfig(_Strict):
    """Per-cluster concurrency limits (fail fast rather than queue without bound)."""

    max_requests: int = Field(default=1024, ge=1, description="Calls in flight to the cluster.")
    max_pending: int = Field(default=1024, ge=0, description="Calls waiting for a slot.")


class ConnectionConfig(_Strict):
    """How the gateway (re)connects to an upstream endpoint. gRPC's own defaults (a 20 s
    connect timeout, back-off growing to 120 s) keep a channel away from an endpoint for
    seconds after its zone comes back: 7-8.5 s measured after a 25 s link cut. Health checks
    and outlier detection decide whether an endpoint takes traffic; the channel only has to
    be ready to try again soon."""

    connect_timeout_s: float = Field(
        default=2.0, gt=0, le=60, description="Longest one connection attempt may take."
    )
    backoff_initial_s: float = Field(
        default=0.1, gt=0, le=60, description="Wait before reconnecting after a failed attempt."
    )
    backoff_max_s: float = Field(
        default=1.0, gt=0, le=300, description="Largest wait between connection attempts."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"connection: backoff_max_s ({self.backoff_max_s}) is below "
                f"backoff_initial_s ({self.backoff_initial_s})"
            )
        return self


class RouteMatch(_Strict):
    """Exactly one of method, service or prefix."""

    method: str | None = Field(default=None, description='"/pkg.Service/Method".')
    service: str | None = Field(default=None, description='"pkg.Service".')
    prefix: str | None = Field(default=None, description='Prefix of the path, e.g. "/isthmus.".')

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [x for x in (self.method, self.service, self.prefix) if x is not None]
        if len(given) != 1:
            raise ValueError("match: give exactly one of method, service, prefix")
        return self

    def matches(self, path: str) -> bool:
        if self.method is not None:
            return path == self.method
        if self.service is not None:
            return path.startswith(f"/{self.service}/")
        assert self.prefix is not None
        return path.startswith(self.prefix)


class RouteConfig(_Strict):
    """Ordered routes; the first that matches a call wins."""

    name: str = Field(description="Unique route name.")
    match: RouteMatch = Field(description="Which calls the route takes.")
    clusters: list[str] = Field(min_length=1, description="Clusters in failover order.")
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="The whole call, every attempt and back-off included, for every call shape "
        "(Envoy's route timeout); when it runs out the caller gets DEADLINE_EXCEEDED. None: "
        "only the caller's own deadline, which is always honoured.",
    )
    per_try_timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=300,
        description="One attempt, where another may follow it: retry-safe unary calls, and "
        "retry-safe server-streaming calls until their first response (after which nothing is "
        "retried). Ends the attempt with UNAVAILABLE (a gateway timeout) so the next may run. "
        "Never applies to a call that cannot be retried, nor to client or bidi streams. None: "
        "no per-try timeout.",
    )
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts per cluster; >1 only for retry-safe RPCs."
    )
    retry_on: list[RetryCode] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_ON),
        description="gRPC status codes of an attempt that let the next attempt (or the next "
        "cluster) run; a CANCELLED from an upstream that went away while the caller still waits "
        "is always retried.",
    )
    fallback: FallbackName = Field(
        default="none",
        description="What to answer when no cluster serves: none (UNAVAILABLE) or a named hook "
        "of fallbacks.py; ads_bid_only is AdService/Rank's bid-only answer under the rules in "
        "rules_file.",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "degraded_fallback" in data:
            raise ValueError(
                "degraded_fallback was replaced by fallback: write `fallback: ads_bid_only` "
                "(or `fallback: none`)"
            )
        return data


class ClusterConfig(_Strict):
    """A set of interchangeable endpoints in one zone."""

    name: str = Field(description="Unique cluster name (the topology's service name).")
    zone: str = Field(description="Zone the endpoints run in.")
    zone_kind: ZoneKind = Field(description="private or public: decides what it may serve.")
    endpoints: list[Endpoint] = Field(
        default_factory=list, description="Static upstream addresses (or endpoints_file)."
    )
    endpoints_file: Path | None = Field(
        default=None,
        description="Discovered endpoints: a JSON file the gateway polls (discovery.py). New "
        "endpoints take traffic once a health check passes; vanished ones drain.",
    )
    health_check: HealthCheckKind = Field(
        default="grpc_health",
        description="grpc_health: grpc.health.v1 Check; serve_healthz: Ray Serve's "
        f"{SERVE_HEALTHZ} with an empty body (OK = healthy, anything else = not); none: no "
        "active checks (for an upstream that serves no health service): endpoints take traffic "
        "at once and only outlier detection on real calls ejects them.",
    )
    outlier: OutlierConfig | None = Field(
        default=None, description="This cluster's outlier detection; None: the gateway's."
    )
    circuit_breaker: CircuitBreakerConfig | None = Field(
        default=None, description="This cluster's concurrency limits; None: the gateway's."
    )
    health: HealthCheckConfig | None = Field(
        default=None, description="This cluster's health-check timing; None: the gateway's."
    )
    connection: ConnectionConfig | None = Field(
        default=None,
        description="This cluster's connect timeout and back-off; None: the gateway's.",
    )
    plaintext: bool = Field(
        default=False,
        description="Dial this cluster without TLS even when upstream_tls is on: its listener "
        "has none (an in-cluster hop inside a default-deny namespace, while the hops to other "
        "clusters use mTLS).",
    )

    def dial_tls(self, upstream_tls: TlsConfig) -> TlsConfig:
        """The TLS this cluster is dialled with."""
        return TlsConfig() if self.plaintext else upstream_tls

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if bool(self.endpoints) == (self.endpoints_file is not None):
            raise ValueError(
                f"cluster {self.name}: give endpoints or endpoints_file, exactly one "
                f"({len(self.endpoints)} endpoints, endpoints_file={self.endpoints_file})"
            )
        return self


class DiscoveryConfig(_Strict):
    """How often clusters with an endpoints_file look at it."""

    poll_interval_s: float = Field(
        default=0.5, gt=0, le=60, description="Time between looks at each endpoints file."
    )


class RetryBudgetConfig(_Strict):
    """Retries allowed as a share of active calls, so retries cannot amplify an outage."""

    budget_percent: float = Field(default=20.0, ge=0, le=100, description="Share of active.")
    min_retry_concurrency: int = Field(default=10, ge=0, description="Always allowed.")
    initial_backoff_s: float = Field(default=0.01, gt=0, description="First retry delay base.")
    max_backoff_s: float = Field(default=0.2, gt=0, description="Largest retry delay.")


class CallerConfig(_Strict):
    """An internal service allowed through the door."""

    name: str = Field(description="Caller name, forwarded upstream in x-isthmus-caller.")
    certificate_names: list[str] = Field(
        default_factory=list, description="Client-certificate CN/SAN values that identify it."
    )
    allow: list[str] = Field(
        min_length=1,
        description='Methods it may call: "/pkg.Service/Method", "/pkg.Service/*" or "*".',
    )
    rate_per_s: float = Field(default=1000.0, gt=0, description="Sustained calls per second.")
    burst: int = Field(default=2000, ge=1, description="Calls allowed in a burst.")


class AuthConfig(_Strict):
    """Who may call. Tokens are JWTs (`sub` = caller name, `exp` required; `nbf`/`iat`
    honoured): HS256 with `token_key`, and/or ES256/EdDSA with the public keys of
    `jwks_file` (see auth.py)."""

    token_key: SecretRef | None = Field(
        default=None, description="HMAC key for HS256 tokens (the local default)."
    )
    jwks_file: Path | None = Field(
        default=None,
        description="JWKS (RFC 7517) of public keys, each with a kid: EC P-256 (ES256) or OKP "
        "Ed25519 (EdDSA); no private members. Read at load and on ReloadConfig (key rotation: "
        "add the new key, reload, drop the old one later).",
    )
    issuer: str | None = Field(default=None, description="Required `iss`, when set.")
    audience: str | None = Field(default=None, description="Required `aud`, when set.")
    leeway_s: float = Field(
        default=0.0, ge=0, le=300, description="Clock skew allowed on exp, nbf and iat."
    )
    callers: list[CallerConfig] = Field(default_factory=list, description="Known callers.")
    allow_anonymous: bool = Field(
        default=False, description="Local demos only: unauthenticated calls act as `anonymous`."
    )

    @field_validator("jwks_file")
    @classmethod
    def _jwks_load(cls, path: Path | None) -> Path | None:
        if path is not None:
            load_jwks(path)  # KeySetError (a ValueError) names the file and the key
        return path


class GatewayConfig(_Strict):
    """Everything the gateway needs; see `from_topology` for how defaults are derived."""

    server: ServerConfig = Field(default_factory=ServerConfig, description="Listener.")
    upstream_tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS to upstreams.")
    clusters: list[ClusterConfig] = Field(description="Upstream clusters.")
    routes: list[RouteConfig] = Field(description="Ordered routes.")
    outlier: OutlierConfig = Field(default_factory=OutlierConfig, description="Ejection.")
    health_check: HealthCheckConfig = Field(default_factory=HealthCheckConfig, description="HC.")
    discovery: DiscoveryConfig = Field(
        default_factory=DiscoveryConfig, description="Endpoints-file polling."
    )
    circuit_breaker: CircuitBreakerConfig = Field(
        default_factory=CircuitBreakerConfig, description="Per-cluster limits."
    )
    connection: ConnectionConfig = Field(
        default_factory=ConnectionConfig, description="Connect timeout and reconnect back-off."
    )
    retry_budget: RetryBudgetConfig = Field(
        default_factory=RetryBudgetConfig, description="Retry budget and back-off."
    )
    auth: AuthConfig = Field(default_factory=AuthConfig, description="Callers.")
    rules_file: Path = Field(
        default=SHIPPED_RULES_FILE,
        validate_default=True,
        description="Ad decision rules (YAML) the ads_bid_only fallback applies: by default the "
        "ranking service's own file, so a degraded answer excludes what a ranked one would. "
        "Read and checked at load; a broken file refuses the whole config.",
    )

    pseudonym_check_key: SecretRef | None = Field(
        default=None,
        description="The check key of pseudonymous ids (the private zone's): a PUBLIC request "
        "whose pseudonymous_*id field holds an id the private zone did not mint is refused "
        "INVALID_ARGUMENT. Unset: only the ids' shape is checked. Read at load and on reload.",
    )

    descriptor_sets: list[Path] = Field(
        default_factory=list,
        description="Other teams' contracts: FileDescriptorSets built with their imports "
        "(`buf build -o x.binpb`, `protoc --include_imports --descriptor_set_out=x.binpb`). "
        "Every method of every service in them becomes routable, checked by the contract's "
        "rules (a method without a sensitivity is SENSITIVE; no pii field reachable from a "
        "PUBLIC method; no isthmus.* or grpc.* services). Read and checked at load and on "
        "ReloadConfig; a set that breaks a rule refuses the whole config.",
    )

    @field_validator("rules_file")
    @classmethod
    def _rules_load(cls, path: Path) -> Path:
        load_rules(path)  # RulesError (a ValueError) names the file and the problem
        return path

    @field_validator("descriptor_sets")
    @classmethod
    def _sets_load(cls, paths: list[Path]) -> list[Path]:
        if paths:
            load_contract(paths)  # ContractError (a ValueError) names the method or file
        return paths

    @model_validator(mode="after")
    def _references(self) -> Self:
        names = [c.name for c in self.clusters]
        if len(set(names)) != len(names):
            raise ValueError("clusters: duplicate cluster name")
        routes = [r.name for r in self.routes]
        if len(set(routes)) != len(routes):
            raise ValueError("routes: duplicate route name")
        for route in self.routes:
            unknown = [c for c in route.clusters if c not in names]
            if unknown:
                raise ValueError(f"route {route.name}: unknown cluster(s) {', '.join(unknown)}")
        return self

    def cluster(self, name: str) -> ClusterConfig:
        return next(c for c in self.clusters if c.name == name)

    def pseudonym_check(self) -> bytes | None:
        """The check key's bytes, read now (None when none is configured)."""
        return self.pseudonym_check_key.read() if self.pseudonym_check_key else None

    def settings_of(self, cluster: ClusterConfig) -> ClusterSettings:
        """What governs `cluster`: its own settings, else the gateway-wide ones (Envoy's
        model: the cluster carries its own, with the gateway's as defaults)."""
        return ClusterSettings(
            outlier=cluster.outlier or self.outlier,
            circuit_breaker=cluster.circuit_breaker or self.circuit_breaker,
            health=cluster.health or self.health_check,
            connection=cluster.connection or self.connection,
        )


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    outlier: OutlierConfig
    circuit_breaker: CircuitBreakerConfig
    health: HealthCheckConfig
    connection: ConnectionConfig


class Outcome(enum.StrEnum):
    """How one attempt ended, as outlier detection sees it."""

    SUCCESS = "success"
    FAILURE = "failure"  # counts towards ejection
    NEUTRAL = "neutral"  # the caller's fault or a deadline: says nothing about the endpoint


def _per_try_timeout_s(is_rank: bool, clusters: int) -> float:
    """Rank answers in tens of ms and callers give it 0.3 s. A service with a cluster to fail
    over to must give up on an unresponsive one (a zone cut off drops packets: calls hang
    rather than fail) early enough to try the next within the caller's timeout (2 s for
    Track in protos/client_service_config.json); a single cluster gets the whole 2 s."""
    if is_rank:
        return 0.25
    return 0.5 if clusters > 1 else 2.0


def from_topology(topology: Topology, **overrides: object) -> GatewayConfig:
    """Clusters from every service in the topology; one route per proto service, in zone order
    (private zone first, then public zones by priority). `overrides` replace fields."""
    clusters = [
        ClusterConfig(
            name=s.name,
            zone=z.name,
            zone_kind=z.kind,
            endpoints=s.endpoints,
            endpoints_file=s.endpoints_file,
            health_check=s.health_check,
            # A listener without TLS is dialled in plaintext even when the gateway has client
            # certificates for the others (TLS to it could only fail).
            plaintext=topology.gateway.upstream_tls.enabled and not s.tls.enabled,
        )
        for z in topology.zones
        for s in z.services
    ]
    order = {z.name: (z.kind is not ZoneKind.PRIVATE, z.priority, z.name) for z in topology.zones}
    routes: list[RouteConfig] = []
    by_service: dict[str, list[tuple[tuple[bool, int, str], str]]] = {}
    for zone in topology.zones:
        for spec in zone.services:
            by_service.setdefault(spec.proto_service, []).append((order[zone.name], spec.name))
    short = [p.rsplit(".", 1)[-1] for p in by_service]
    for proto_service, members in sorted(by_service.items()):
        is_rank = proto_service == "isthmus.ads.v1.AdService"
        name = proto_service.rsplit(".", 1)[-1]
        routes.append(
            RouteConfig(
                # Short names read best; two teams' services of one short name keep their own.
                name=name if short.count(name) == 1 else proto_service,
                match=RouteMatch(service=proto_service),
                clusters=[name for _, name in sorted(members)],
                per_try_timeout_s=_per_try_timeout_s(is_rank, len(members)),
                fallback="ads_bid_only" if is_rank else "none",
            )
        )
    server = ServerConfig(listen=topology.gateway.listen, tls=topology.gateway.tls)
    values: dict[str, object] = {
        "server": server,
        "upstream_tls": topology.gateway.upstream_tls,
        "clusters": clusters,
        "routes": routes,
        "descriptor_sets": topology.gateway.descriptor_sets,
    }
    values.update(overrides)
    return GatewayConfig.model_validate(values)
