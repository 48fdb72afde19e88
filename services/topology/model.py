"""The topology: which zones exist, what each runs, where it listens, and with what TLS.

One model read by the gateway, the local launcher, the chaos drills and the Helm values. It holds
no secrets: key material is referenced by file path or environment variable name only.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.core.net import Endpoint as Endpoint
from services.core.net import TlsConfig as TlsConfig

_NAME = r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$"
Name = Annotated[str, Field(pattern=_NAME, description="DNS-label style name, 2-40 chars.")]
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


class _Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneKind(enum.StrEnum):
    """Trust class of a zone. Only a private zone may hold SENSITIVE services."""

    PRIVATE = "private"
    PUBLIC = "public"


class ServiceKind(enum.StrEnum):
    """The services isthmus knows how to run, each serving one proto service; `external` is
    another team's service that isthmus routes to but does not run (its proto service is
    named by `serves`, its contract loaded from `gateway.descriptor_sets`)."""

    PROFILE = "profile"
    ORDERS = "orders"
    ADS = "ads"
    EVENTS = "events"
    EXTERNAL = "external"


# Which proto service each kind serves; the contract says how sensitive that service is.
PROTO_SERVICE: dict[ServiceKind, str] = {
    ServiceKind.PROFILE: "isthmus.profile.v1.ProfileService",
    ServiceKind.ORDERS: "isthmus.orders.v1.OrderService",
    ServiceKind.ADS: "isthmus.ads.v1.AdService",
    ServiceKind.EVENTS: "isthmus.events.v1.EventService",
}


class ServiceSpec(_Strict):
    """One service running in a zone, behind one or more endpoints."""

    name: Name = Field(description="Unique name across the topology, used as the cluster name.")
    kind: ServiceKind = Field(description="What the service is.")
    endpoints: list[Endpoint] = Field(
        default_factory=list,
        description="Where its replicas listen; the gateway balances across them. Empty only "
        "with endpoints_file.",
    )
    endpoints_file: Path | None = Field(
        default=None,
        description="JSON file listing the replicas, rewritten atomically by whoever scales them "
        "(Ray Serve direct ingress); the gateway polls it. See services/gateway/discovery.py.",
    )
    health_check: Literal["grpc_health", "serve_healthz", "none"] = Field(
        default="grpc_health",
        description="How the gateway checks an endpoint: grpc.health.v1 Check, Ray Serve's "
        "/ray.serve.RayServeAPIService/Healthz, or none (a service without a health service: "
        "passive outlier detection on real calls only).",
    )
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS of its listeners.")
    serves: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$",
        description="kind external only: the full name of the proto service it serves, e.g. "
        '"acme.loyalty.v1.MemberService".',
    )

    @model_validator(mode="after")
    def _some_endpoints(self) -> Self:
        if bool(self.endpoints) == (self.endpoints_file is not None):
            raise ValueError(
                f"service {self.name}: give endpoints or endpoints_file, exactly one "
                f"({len(self.endpoints)} endpoints, endpoints_file={self.endpoints_file})"
            )
        if (self.kind is ServiceKind.EXTERNAL) != (self.serves is not None):
            raise ValueError(
                f"service {self.name}: `serves` names the proto service of a kind external "
                f"service, and only of one (kind is {self.kind}, serves is {self.serves!r})"
            )
        return self

    @property
    def proto_service(self) -> str:
        return self.serves if self.serves is not None else PROTO_SERVICE[self.kind]

    @property
    def run_by_isthmus(self) -> bool:
        """isthmus starts it (`isthmus up`, the Helm chart); external services run elsewhere."""
        return self.kind is not ServiceKind.EXTERNAL


class RayConfig(_Strict):
    """Where a public zone's Ray cluster is and how much of it to use."""

    address: str = Field(
        default="local",
        description='"local" starts Ray in process; "auto" or "ray://host:10001" joins a cluster.',
    )
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs Ray may use; None = all.")
    object_store_memory_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=75 * 1024 * 1024,
        description="Plasma store size in bytes, per node.",
    )
    worker_nodes: int = Field(
        default=0,
        ge=0,
        le=16,
        description='With address "local": Ray worker nodes the local launcher starts with '
        "`ray start` beside a head node (each a process the supervisor restarts, like a pod); "
        "the ranking replicas run on the workers, the head keeps Serve's controller and proxy. "
        "0 = one node inside the ads process.",
    )
    worker_node_cpus: int = Field(
        default=1, ge=1, le=64, description="Logical CPUs each worker node offers to replicas."
    )

    @property
    def multi_node(self) -> bool:
        """A head plus worker nodes started by the launcher, rather than one in-process node."""
        return self.address == "local" and self.worker_nodes > 0


class DatabaseSpec(_Strict):
    """The private zone's database as the local launcher runs it. Elsewhere (Kubernetes) the
    private services get a PostgreSQL URL from a Secret instead."""

    engine: Literal["sqlite", "postgresql"] = Field(
        default="sqlite",
        description="sqlite: one file beside the private data (no server). postgresql: a "
        "PostgreSQL server the supervisor runs and restarts like any process (initdb on first "
        "`up`; its data survives `down`), so a drill can stop the database hard.",
    )
    port: int = Field(
        default=5433,
        ge=1,
        le=65535,
        description="postgresql: TCP port on the private zone's address (5433: off the "
        "system server's 5432).",
    )


class ZoneSpec(_Strict):
    """A cloud: locally a group of processes (optionally in its own network namespace)."""

    name: Name = Field(description="Unique zone name, e.g. private, public-a.")
    kind: ZoneKind = Field(description="Trust class of the zone.")
    priority: int = Field(
        default=0, ge=0, description="Failover order among public zones; lower is tried first."
    )
    network_namespace: str | None = Field(
        default=None, description="Linux network namespace to run in locally; None = host."
    )
    ray: RayConfig | None = Field(default=None, description="Ray cluster, for public zones.")
    database: DatabaseSpec | None = Field(
        default=None,
        description="Private zones: the database of profile and orders; None = SQLite.",
    )
    services: list[ServiceSpec] = Field(default_factory=list, description="Services it runs.")

    @model_validator(mode="after")
    def _ray_only_public(self) -> Self:
        if self.ray is not None and self.kind is not ZoneKind.PUBLIC:
            raise ValueError(
                f"zone {self.name}: ray is only for public zones (kind is {self.kind})"
            )
        if self.database is not None and self.kind is not ZoneKind.PRIVATE:
            raise ValueError(
                f"zone {self.name}: database is only for private zones (kind is {self.kind}): "
                "personal data and orders never live in a public zone"
            )
        return self


class GatewaySpec(_Strict):
    """The one door: where internal callers reach the platform."""

    listen: Endpoint = Field(description="Where the gateway accepts calls.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS of the listener.")
    upstream_tls: TlsConfig = Field(
        default_factory=TlsConfig, description="TLS the gateway uses towards services."
    )
    network_namespace: str | None = Field(
        default=None, description="Linux network namespace to run in locally; None = host."
    )
    descriptor_sets: list[Path] = Field(
        default_factory=list,
        description="Other teams' contracts (`buf build` or `protoc --include_imports` output) "
        "routed beside isthmus' own; checked by the same rules at load and on ReloadConfig "
        "(services/contract/teams.py).",
    )
    instances: int = Field(
        default=1,
        ge=1,
        le=8,
        description="Gateway processes sharing the listen address (SO_REUSEPORT: the kernel "
        "spreads new connections over them), so the door survives losing one. Clients retry "
        "per protos/client_service_config.json and reconnect to a survivor.",
    )


class ChaosSpec(_Strict):
    """What chaos drills may do to this deployment (`isthmus chaos run`). Absent = nothing:
    a drill refuses a topology that does not name every target it touches."""

    targets: list[
        Literal[
            "public-nodes",
            "replicas",
            "public-zone",
            "private-link",
            "sync",
            "database",
            "gateway",
            "public-link",
        ]
    ] = Field(
        min_length=1,
        description="Kinds of fault allowed: public-nodes (SIGKILL Ray worker nodes), replicas "
        "(SIGKILL ranking replicas), public-zone (take a whole public zone out), private-link "
        "(cut gateway <-> private zone), public-link (delay/loss towards a public zone), sync "
        "(cut or kill the sync job), database (stop the private database), gateway (SIGKILL "
        "a gateway instance).",
    )
    zones: list[str] = Field(
        default_factory=list,
        description="Zones drills may touch; empty = every zone of the topology.",
    )
    max_duration_s: float = Field(
        default=600.0, gt=0, le=3600, description="Wall-clock limit of any one drill."
    )


class DataSpec(_Strict):
    """Where the Spark data jobs (issue #6) read and write, and how they run.

    Locations are URIs: a plain path (relative ones are resolved against the working
    directory, like every other path in isthmus config) or file:///...; object-store URIs
    (s3a://, gs://) are handed to Spark as they are.
    """

    landing_uri: str = Field(
        default="var/public/landing", min_length=1, description="Public landing log (input)."
    )
    warehouse_uri: str = Field(
        default="var/private/warehouse",
        min_length=1,
        description="Private warehouse root: events/, erasures/, training/.",
    )
    quarantine_uri: str = Field(
        default="var/private/quarantine",
        min_length=1,
        description="Malformed landing lines, each with its reason and source file.",
    )
    checkpoint_uri: str = Field(
        default="var/private/checkpoints",
        min_length=1,
        description="Structured Streaming checkpoints (offsets, commits, dedup state).",
    )
    features_uri: str = Field(
        default="var/public/features",
        min_length=1,
        description="Public feature snapshots: snapshots/<version>/ and the CURRENT pointer.",
    )
    spark_master: str = Field(
        default="local[2]",
        min_length=1,
        description='Spark master: "local[N]", "spark://host:7077" or "k8s://https://...".',
    )
    shuffle_partitions: int = Field(
        default=4, ge=1, le=10_000, description="spark.sql.shuffle.partitions."
    )
    driver_memory: str = Field(
        default="1g", pattern=r"^[0-9]+[kmgt]$", description="spark.driver.memory, e.g. 1g."
    )
    driver_java_options: str = Field(
        default="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        max_length=1000,
        description="spark.driver.extraJavaOptions. The default suits the sync's short "
        "availableNow runs, where JVM start-up and warm-up dominate: C1 only and the serial "
        "collector (a whole 10-file run 26 s vs 33 s with the JVM's defaults, a 300k-event "
        "run 53 s either way; bench/results/spark_jvm.json). Empty: the JVM's defaults.",
    )
    k_anonymity: int = Field(
        default=20, ge=2, description="Segments with fewer users than this are suppressed."
    )
    late_data_horizon_s: int = Field(
        default=7 * 86_400,
        ge=60,
        description="How late a landing file or a replayed event may arrive and still be "
        "handled: the dedup watermark delay (on ingest time) and the file source's maxFileAge.",
    )
    max_files_per_trigger: int = Field(
        default=1000, ge=1, description="Landing files per micro-batch."
    )
    keep_snapshots: int = Field(
        default=3, ge=2, description="Feature snapshot versions kept (current + rollbacks)."
    )
    ctr_prior_strength: float = Field(
        default=100.0,
        gt=0,
        description="Pseudo-impressions of the global CTR prior in the smoothed CTR.",
    )


class Topology(_Strict):
    """The whole platform: a gateway and the zones behind it."""

    name: Name = Field(description="Name of this deployment, e.g. local, staging.")
    gateway: GatewaySpec = Field(description="The gateway.")
    zones: list[ZoneSpec] = Field(min_length=1, description="Private and public zones.")
    data: DataSpec = Field(
        default_factory=DataSpec, description="Spark data jobs: locations and settings."
    )
    chaos: ChaosSpec | None = Field(
        default=None, description="Chaos drills this deployment allows; None = none."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _no_duplicates("zone name", [z.name for z in self.zones])
        _no_duplicates("service name", [s.name for z in self.zones for s in z.services])
        listeners = [self.gateway.listen] + [
            e for z in self.zones for s in z.services for e in s.endpoints
        ]
        _no_duplicates(
            "listen address", [e.address for e in listeners if e.port != 0 and e.host != "::"]
        )
        if not any(z.kind is ZoneKind.PRIVATE for z in self.zones):
            raise ValueError("topology needs a private zone (kind: private)")
        if self.chaos is not None:
            known = {z.name for z in self.zones}
            unknown = sorted(set(self.chaos.zones) - known)
            if unknown:
                raise ValueError(
                    f"chaos.zones names unknown zone(s) {', '.join(unknown)}; "
                    f"known: {', '.join(sorted(known))}"
                )
        return self

    def zone(self, name: str) -> ZoneSpec:
        for zone in self.zones:
            if zone.name == name:
                return zone
        known = ", ".join(z.name for z in self.zones)
        raise KeyError(f"no zone {name!r}; known zones: {known}")

    def service(self, name: str) -> tuple[ZoneSpec, ServiceSpec]:
        for zone in self.zones:
            for spec in zone.services:
                if spec.name == name:
                    return zone, spec
        known = ", ".join(s.name for z in self.zones for s in z.services)
        raise KeyError(f"no service {name!r}; known services: {known}")

    def public_zones(self) -> list[ZoneSpec]:
        """Public zones in failover order (priority, then name)."""
        return sorted(
            (z for z in self.zones if z.kind is ZoneKind.PUBLIC), key=lambda z: (z.priority, z.name)
        )


def _no_duplicates(what: str, values: list[str]) -> None:
    repeated = sorted(v for v, n in Counter(values).items() if n > 1)
    if repeated:
        raise ValueError(f"duplicate {what}: {', '.join(repeated)}")
