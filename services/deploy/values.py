"""The Helm chart's values (deploy/helm/isthmus) as one validated model.

`values.schema.json` is generated from this model (`isthmus render values-schema`; a test
keeps the committed file fresh), so the schema Helm checks at install, the values
`isthmus render helm-values` writes and the documentation of every key are one source.
Keys are camelCase as Helm charts write them; every object forbids unknown keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

Sensitivity = Literal["SENSITIVE", "PUBLIC"]
_DNS = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class _Values(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class Image(_Values):
    """A container image; a digest, when given, pins it (tag ignored)."""

    repository: str = Field(min_length=1, description="Image repository (no tag).")
    tag: str = Field(default="0.1.0", description="Image tag, used when digest is empty.")
    digest: str = Field(
        default="", pattern=r"^(|sha256:[0-9a-f]{64})$", description="sha256:... digest."
    )
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field(
        default="IfNotPresent", description="Kubernetes imagePullPolicy."
    )


class Resources(_Values):
    """Requests equal limits for memory (no overcommit); CPU limit left off (no throttling)."""

    cpu: str = Field(default="250m", description="CPU request.")
    memory: str = Field(default="256Mi", description="Memory request and limit.")


class Zone(_Values):
    name: str = Field(pattern=_DNS, description="Zone name, as in the topology.")
    kind: Literal["private", "public"] = Field(description="Trust class of this cluster.")


class Service(_Values):
    """A service of the topology that this release runs."""

    name: str = Field(pattern=_DNS, description="Service name (the gateway's cluster name).")
    kind: Literal["profile", "orders", "ads", "events"] = Field(description="What it is.")
    sensitivity: Sensitivity = Field(
        description="SENSITIVE if any RPC of it is; only a private release may run it."
    )
    port: int = Field(ge=1, le=65535, description="gRPC port of its pods.")
    replicas: int = Field(default=2, ge=1, le=100, description="Pods (not for ads: Serve).")
    resources: Resources = Field(default_factory=Resources, description="Per pod.")


class Autoscaling(_Values):
    enabled: bool = Field(default=True, description="Render a HorizontalPodAutoscaler.")
    min_replicas: int = Field(default=2, ge=2, description="Never fewer than two: the door.")
    max_replicas: int = Field(default=6, ge=2, description="Ceiling.")
    target_cpu_utilization_percentage: int = Field(default=70, ge=10, le=95, description="CPU.")

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"gateway.autoscaling: minReplicas ({self.min_replicas}) must be <= "
                f"maxReplicas ({self.max_replicas})"
            )
        return self


class Upstream(_Values):
    """One service of a public zone as the gateway dials it."""

    name: str = Field(pattern=_DNS, description="The topology's service name (cluster name).")
    host: str = Field(min_length=1, description="DNS name of the zone's internal load balancer.")
    port: int = Field(ge=1, le=65535, description="Its port.")


class PublicCluster(_Values):
    """How the gateway reaches one public zone across clusters: the zone's internal load
    balancer in front of Serve's gRPC proxies (ranking) and the event service, with mTLS."""

    zone: str = Field(pattern=_DNS, description="Public zone name.")
    priority: int = Field(default=0, ge=0, description="Failover order; lower first.")
    ads: Upstream = Field(description="Ranking (Serve's gRPC proxies).")
    events: Upstream = Field(description="Event collection.")


class Caller(_Values):
    """An internal service allowed through the gateway (its token or certificate name)."""

    name: str = Field(pattern=_DNS, description="Caller name.")
    allow: list[str] = Field(min_length=1, description="Method patterns, e.g. /pkg.Svc/*.")
    certificate_names: list[str] = Field(default_factory=list, description="mTLS identities.")


class Gateway(_Values):
    enabled: bool = Field(default=False, description="Run the gateway (the private release).")
    replicas: int = Field(default=2, ge=2, description="Pods when autoscaling is off.")
    port: int = Field(default=50051, ge=1, le=65535, description="gRPC port callers dial.")
    metrics_port: int = Field(default=9464, ge=1, le=65535, description="Prometheus port.")
    resources: Resources = Field(default_factory=lambda: Resources(cpu="500m", memory="512Mi"))
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="HPA.")
    min_available: int = Field(default=1, ge=1, description="PodDisruptionBudget floor.")
    tls_secret: str = Field(
        default="isthmus-gateway-tls",
        description="Secret (tls.crt, tls.key, ca.crt) of the caller-facing listener.",
    )
    upstream_tls_secret: str = Field(
        default="isthmus-gateway-upstream-tls",
        description="Secret (tls.crt, tls.key, ca.crt): the gateway's client certificate for "
        "the mTLS hop to the public zones.",
    )
    public_clusters: list[PublicCluster] = Field(
        default_factory=list, description="Public zones, reached across clusters."
    )
    callers: list[Caller] = Field(default_factory=list, description="Who may call what.")
    token_secret: str = Field(
        default="isthmus-gateway-token", description="Secret (token.key): callers' token key."
    )


class Private(_Values):
    database_secret: str = Field(
        default="isthmus-postgres", description="Existing Secret with key database-url."
    )
    keys_secret: str = Field(
        default="isthmus-keys", description="Existing Secret with keys master.key, hmac.key."
    )
    sync_schedule: str = Field(default="*/5 * * * *", description="Spark sync CronJob.")
    export_schedule: str = Field(default="0 * * * *", description="Feature export CronJob.")
    checkpoint_size: str = Field(default="10Gi", description="PVC of the sync's checkpoint.")
    storage_class: str = Field(default="", description="StorageClass of the PVCs; '' = default.")
    landing_uri: str = Field(
        default="s3a://isthmus-landing/events", description="Landing log the sync reads."
    )
    erasure_job: bool = Field(
        default=False,
        description="Render a Job that applies the pending erasures now (EraseProfile "
        "records them; the job removes those people from the warehouse and snapshots).",
    )


class WorkerGroup(_Values):
    min_replicas: int = Field(default=1, ge=0, description="Ray worker pods at least.")
    max_replicas: int = Field(default=8, ge=1, description="Ray worker pods at most.")
    resources: Resources = Field(default_factory=lambda: Resources(cpu="1", memory="2Gi"))


TERMINATOR_HEALTH_PORT = 8081  # nginx's plaintext /healthz, for the kubelet's probes


class Terminator(_Values):
    """nginx in front of Serve's gRPC proxy, which has no TLS of its own: it terminates the
    gateway's mTLS (client certificates from the zone's CA only) and passes the calls on as
    plaintext HTTP/2 to Serve's port 9000 inside the namespace. The ads load balancer's
    target."""

    image: Image = Field(
        default_factory=lambda: Image(
            repository="nginxinc/nginx-unprivileged", tag="1.28.0-alpine"
        ),
        description="nginx, the unprivileged build (runs as any non-root user).",
    )
    replicas: int = Field(default=2, ge=2, le=20, description="Pods; two at least (the door).")
    min_available: int = Field(default=1, ge=1, description="PodDisruptionBudget floor.")
    port: int = Field(
        default=9443,
        ge=1024,
        le=65535,
        description="TLS port of the pods; the ads load balancer forwards its port (the "
        "gateway's publicClusters[].ads.port) here.",
    )
    resources: Resources = Field(
        default_factory=lambda: Resources(cpu="250m", memory="128Mi"), description="Per pod."
    )
    connect_timeout_s: int = Field(
        default=2, ge=1, le=75, description="Longest a connection to Serve's proxy may take."
    )
    call_idle_timeout_s: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="Longest silence between two reads or two writes within one call, "
        "either side; the call's own deadline (grpc-timeout, passed on) ends it sooner.",
    )
    connection_idle_timeout_s: int = Field(
        default=300, ge=1, le=3600, description="An idle client connection is closed after it."
    )
    max_concurrent_streams: int = Field(
        default=1024,
        ge=1,
        le=65535,
        description="Calls in flight on one client connection (the gateway allows 1024 per "
        "cluster); beyond it, the client queues.",
    )
    max_request_body_mib: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Largest request body: one message of a unary call (the gateway accepts "
        "4 MiB messages), all messages of a client stream together; above it, "
        "RESOURCE_EXHAUSTED.",
    )
    access_log: bool = Field(
        default=True,
        description="One line per call to stdout: peer, client certificate subject, method, "
        "statuses, duration (never headers, tokens or bodies).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Terminator:
        if self.port == TERMINATOR_HEALTH_PORT:
            raise ValueError(
                f"public.terminator.port ({self.port}) must differ from its health port "
                f"({TERMINATOR_HEALTH_PORT})"
            )
        if self.min_available >= self.replicas:
            raise ValueError(
                f"public.terminator: minAvailable ({self.min_available}) must be < replicas "
                f"({self.replicas}), or no pod could ever be drained"
            )
        return self


class Public(_Values):
    worker_group: WorkerGroup = Field(default_factory=WorkerGroup, description="Ray workers.")
    serve_config: dict[str, Any] = Field(
        default_factory=dict,
        description="Ray Serve config (serveConfigV2), written by `isthmus render helm-values` "
        "from AdsConfig; do not edit by hand.",
    )
    landing_size: str = Field(default="50Gi", description="PVC of the event landing log.")
    storage_class: str = Field(default="", description="StorageClass of the PVC; '' = default.")
    mtls_secret: str = Field(
        default="isthmus-public-mtls",
        description="Secret (tls.crt, tls.key, ca.crt) of the zone's cross-cluster listener.",
    )
    ray_operator_namespace: str = Field(
        default="kuberay-operator",
        pattern=_DNS,
        description="Namespace of the KubeRay operator: the only one allowed to reach the Ray "
        "head's dashboard port, through which it deploys and watches the Serve applications.",
    )
    terminator: Terminator = Field(
        default_factory=Terminator,
        description="mTLS terminator (nginx) in front of Serve's gRPC proxy.",
    )


class Observability(_Values):
    otel_endpoint: str = Field(default="", description="OTLP gRPC endpoint; '' = none.")
    service_monitor: bool = Field(default=False, description="Render a ServiceMonitor.")
    prometheus_rule: bool = Field(default=False, description="Render alert rules.")
    error_ratio_slo: float = Field(
        default=0.001, gt=0, lt=1, description="Allowed failed-call ratio per class."
    )
    p99_ms: int = Field(default=300, ge=1, description="p99 objective of PUBLIC calls (ms).")
    public_methods: list[str] = Field(
        default_factory=list, description="PUBLIC RPCs (pkg.Service/Method), from the contract."
    )
    sensitive_methods: list[str] = Field(
        default_factory=list, description="SENSITIVE RPCs (pkg.Service/Method), from the contract."
    )


class HelmTest(_Values):
    """`helm test`: the drills' steady-state probes (services/deploy/steady_state.py)."""

    enabled: bool = Field(default=True, description="Render the `helm test` probe pod.")
    window_seconds: int = Field(
        default=30,
        ge=1,
        le=240,
        description="How long the gateway's call counters are watched (private release); the "
        "success ratio of each class must stay at 1 - observability.errorRatioSlo or above. "
        "At most 240, inside `helm test`'s default 5-minute timeout.",
    )
    require_calls: bool = Field(
        default=False,
        description="Deviate when a class had no calls in the window (off: a quiet platform "
        "is reported as not measured).",
    )


class PeakWindow(_Values):
    name: str = Field(pattern=_DNS, description="Window name.")
    start: str = Field(description="Cron schedule when the floor is raised.")
    end: str = Field(description="Cron schedule when it is restored.")
    min_replicas: int = Field(ge=1, description="Ranking replicas at least, inside the window.")


class PeakSeason(_Values):
    enabled: bool = Field(default=False, description="Render the windows' CronJobs.")
    windows: list[PeakWindow] = Field(default_factory=list, description="Sale windows.")


class PodChaos(_Values):
    enabled: bool = Field(default=False, description="Kill Ray worker pods.")
    percent: int = Field(default=30, ge=1, le=100, description="fixed-percent value.")


class NetworkChaos(_Values):
    enabled: bool = Field(default=False, description="Render this fault.")
    latency_ms: int = Field(default=0, ge=0, le=10000, description="Added delay (public link).")
    loss_percent: int = Field(default=0, ge=0, le=100, description="Packet loss (public link).")


class DatabaseCut(_Values):
    """db-down: the pods serving SENSITIVE RPCs cut off from the database's addresses (a
    managed database cannot be stopped by a drill; to the services it is the same outage)."""

    enabled: bool = Field(default=False, description="Render this fault.")
    hosts: list[str] = Field(
        default_factory=list,
        description="The database's addresses (IPs or CIDRs) the Secret's URL points at.",
    )

    @model_validator(mode="after")
    def _hosts_when_enabled(self) -> DatabaseCut:
        if self.enabled and not self.hosts:
            raise ValueError("drills.databaseCut needs the database's hosts it cuts off")
        return self


class Drills(_Values):
    """Chaos Mesh resources, all off by default; only namespaces listed may be targeted."""

    enabled: bool = Field(default=False, description="Master switch.")
    allowed_namespaces: list[str] = Field(
        default_factory=list, description="Namespaces a drill may touch (this one must be in)."
    )
    duration: str = Field(default="60s", pattern=r"^[0-9]+(s|m)$", description="Fault length.")
    pod_chaos: PodChaos = Field(default_factory=PodChaos, description="public-nodes-30.")
    private_partition: NetworkChaos = Field(
        default_factory=NetworkChaos, description="Gateway <-> private services partition."
    )
    public_link: NetworkChaos = Field(
        default_factory=NetworkChaos, description="Delay/loss on the gateway's public hop."
    )
    database_cut: DatabaseCut = Field(
        default_factory=DatabaseCut, description="db-down: SENSITIVE pods <-> database cut."
    )
    schedule: str = Field(default="", description="Cron: run the enabled drills on it.")


class ChartValues(_Values):
    """Values of one release: one zone of the topology."""

    name_override: str = Field(default="", description="Replaces the chart name in names.")
    zone: Zone = Field(description="The zone this release is.")
    image: Image = Field(
        default_factory=lambda: Image(repository="isthmus/services"),
        description="The isthmus services image (deploy/images/services.Containerfile).",
    )
    ray_image: Image = Field(
        default_factory=lambda: Image(repository="isthmus/ray"),
        description="The Ray head/worker image with the ranking app (ray.Containerfile).",
    )
    services: list[Service] = Field(default_factory=list, description="What this zone runs.")
    gateway: Gateway = Field(default_factory=Gateway, description="The one door.")
    private: Private = Field(default_factory=Private, description="Private zone settings.")
    public: Public = Field(default_factory=Public, description="Public zone settings.")
    pseudonym_check_secret: str = Field(
        default="isthmus-pseudonym-check",
        pattern=_DNS,
        description="Existing Secret with key `pseudonym-check.key`: the check key of "
        "pseudonymous ids, the same in every release (the private services and data jobs mint "
        "ids with it; the gateway and the event services verify them).",
    )
    network_policy: bool = Field(default=True, description="Default deny plus allow rules.")
    pod_listen_host: str = Field(
        default="0.0.0.0",  # noqa: S104 (the chart's choice for pods, never a local run's)
        min_length=1,
        description="Where every server binds inside its pod: all interfaces of the pod's own "
        "network namespace (the pod IP is unknown when values are written).",
    )
    observability: Observability = Field(default_factory=Observability, description="Metrics.")
    peak_season: PeakSeason = Field(default_factory=PeakSeason, description="Scale windows.")
    drills: Drills = Field(default_factory=Drills, description="Chaos Mesh drills.")
    helm_test: HelmTest = Field(default_factory=HelmTest, description="The `helm test` pod.")

    @model_validator(mode="after")
    def _zone_rules(self) -> ChartValues:
        if self.zone.kind == "public":
            sensitive = [s.name for s in self.services if s.sensitivity == "SENSITIVE"]
            if sensitive:
                raise ValueError(
                    f"SENSITIVE service(s) {', '.join(sensitive)} cannot run in public zone "
                    f"{self.zone.name}"
                )
            if self.gateway.enabled:
                raise ValueError("the gateway runs in the private release only")
        return self


def values_schema() -> dict[str, Any]:
    """values.schema.json: this model's JSON schema, camelCase keys, unknown keys refused."""
    schema = ChartValues.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "isthmus chart values"
    return schema
