"""Configuration of the ad-ranking application on Ray Serve: one validated model.

The defaults are for peak season on a small cluster: scale up within seconds of a load step,
scale down calmly. Ray Serve's own defaults (upscale_delay_s 30, downscale_delay_s 600,
look_back_period_s 30) suit steady traffic; a flash sale doubles traffic in well under 30 s,
so waiting half a minute to add a replica means half a minute of queueing. Going down is the
cheap direction to be slow in: a surplus replica costs a little CPU, a missing one costs
latency, so downscale waits a minute (not ten) and halves the surplus per step
(downscaling_factor) so a dip between two waves does not drop capacity the next wave needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.adpolicy import SHIPPED_RULES_FILE
from services.public.ads.autoscaling import POLICY_PATH


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AutoscalingSpec(_Strict):
    """Ray Serve autoscaling for the ranking deployment (see the module docstring)."""

    min_replicas: int = Field(default=1, ge=1, description="Replicas kept at night.")
    initial_replicas: int | None = Field(default=None, ge=1, description="Replicas at start.")
    max_replicas: int = Field(default=4, ge=1, description="Ceiling for peak season.")
    target_ongoing_requests: float = Field(
        default=2.0, gt=0, description="In-flight requests per replica that the scaler aims at."
    )
    target_busy: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of wall time a replica spends ranking that the scaler aims at "
        "(one call at a time, so 1.0 is saturated; ranking is ~70% of a saturated replica's "
        "work, the rest is gRPC and Serve; see autoscaling.py).",
    )
    upscale_delay_s: float = Field(default=2.0, ge=0, description="Sustained need before adding.")
    downscale_delay_s: float = Field(
        default=60.0, ge=0, description="Sustained surplus before removing."
    )
    look_back_period_s: float = Field(
        default=5.0, gt=0, description="Window over which in-flight requests are averaged."
    )
    metrics_interval_s: float = Field(
        default=1.0, gt=0, description="How often replicas and handles push load metrics."
    )
    upscaling_factor: float = Field(default=1.0, gt=0, description="Gain on upscale decisions.")
    downscaling_factor: float = Field(default=0.5, gt=0, description="Gain on downscale steps.")

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling: min_replicas must be <= max_replicas")
        if self.initial_replicas is not None and not (
            self.min_replicas <= self.initial_replicas <= self.max_replicas
        ):
            raise ValueError("autoscaling: initial_replicas must lie in [min, max]")
        return self

    def to_serve(self) -> dict[str, Any]:
        """The dict Ray Serve's `autoscaling_config` takes."""
        return {
            "min_replicas": self.min_replicas,
            "initial_replicas": self.initial_replicas,
            "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing_requests,
            "upscale_delay_s": self.upscale_delay_s,
            "downscale_delay_s": self.downscale_delay_s,
            "look_back_period_s": self.look_back_period_s,
            "metrics_interval_s": self.metrics_interval_s,
            "upscaling_factor": self.upscaling_factor,
            "downscaling_factor": self.downscaling_factor,
            "policy": {
                "policy_function": POLICY_PATH,
                "policy_kwargs": {
                    "target_ongoing_requests": self.target_ongoing_requests,
                    "target_busy": self.target_busy,
                },
            },
        }


class BatchingSpec(_Strict):
    """Cross-request batching with `@serve.batch`. Off by default: measured here at 100
    candidates per request it lowered throughput (mean batch < 2); turn it on for models whose
    per-call overhead dominates (small candidate lists, GPU)."""

    enabled: bool = Field(default=False, description="Batch ONNX calls across requests.")
    max_batch_size: int = Field(default=8, ge=1, description="Requests per batch at most.")
    wait_timeout_s: float = Field(default=0.002, ge=0, description="Longest wait to fill one.")


# The Serve deployment and the gRPC servicer it registers, named once: the zone process
# (deployment.py) and the KubeRay serveConfigV2 (services/deploy/serve_config.py) use them.
DEPLOYMENT = "AdRanker"
SERVICER = "isthmus.ads.v1.ads_pb2_grpc.add_AdServiceServicer_to_server"
APP_BUILDER = "services.public.ads.deployment:app_from_args"


class AdsConfig(_Strict):
    """Everything the ranking replicas and the zone process need."""

    app_name: str = Field(default="ads", description="Serve application name.")
    registry_dir: Path = Field(default=Path("var/models"), description="Model registry root.")
    model_name: str = Field(default="ctr", description="Model name inside the registry.")
    features_dir: Path | None = Field(
        default=Path("var/public/features"),
        description="Public feature snapshot root (CURRENT pointer); None = defaults only.",
    )
    rules_file: Path = Field(
        default=SHIPPED_RULES_FILE,
        description="Decision rules (YAML); the gateway's degraded answer reads the same file.",
    )
    refresh_interval_s: float = Field(
        default=2.0, gt=0, description="How often replicas look for new models, rules, features."
    )
    unhealthy_after_refresh_intervals: float = Field(
        default=5.0,
        ge=2,
        description="A replica none of whose refreshes has finished for this many refresh "
        "intervals (each raised, or one hangs) reports unhealthy to Serve, which replaces it; "
        "refused files do not count (see ads/health.py).",
    )
    replica_num_cpus: float = Field(
        default=0.5, gt=0, description="Logical CPUs one replica reserves (sets the ceiling)."
    )
    ort_threads: int = Field(default=1, ge=1, description="onnxruntime intra-op threads.")
    max_ongoing_requests: int = Field(
        default=32, ge=1, description="Per replica; Serve's default 5 rejects under load."
    )
    max_candidates: int = Field(default=1000, ge=1, le=1000, description="Per request, at most.")
    drain_period_s: float = Field(
        default=5.0,
        ge=0,
        description="How long a stopping replica keeps answering its direct-ingress port; "
        "longer than the gateway's endpoint-file poll plus one call.",
    )
    http_port: int = Field(
        default=0, ge=0, le=65535, description="Serve's HTTP proxy port (127.0.0.1); 0 = free."
    )
    base_dir: Path = Field(
        default=Path("."), description="Relative paths (registry, features, budgets) start here."
    )
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec)
    batching: BatchingSpec = Field(default_factory=BatchingSpec)

    def deployment_options(self) -> dict[str, Any]:
        """Serve's options of the ranking deployment, as `.options()` and a config file's
        `deployments` entry both take them."""
        return {
            "autoscaling_config": self.autoscaling.to_serve(),
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.replica_num_cpus},
            "health_check_period_s": 2.0,
            "graceful_shutdown_timeout_s": max(5.0, self.drain_period_s + 2.0),
            # One log line per call costs more CPU than ranking it; the gateway logs calls.
            "logging_config": {"enable_access_log": False, "log_level": "WARNING"},
        }

    def resolved(self) -> AdsConfig:
        """The same config with every path absolute (replicas do not share our cwd)."""
        base = self.base_dir.resolve()

        def absolute(path: Path) -> Path:
            return path if path.is_absolute() else base / path

        return self.model_copy(
            update={
                "base_dir": base,
                "registry_dir": absolute(self.registry_dir),
                "features_dir": None if self.features_dir is None else absolute(self.features_dir),
                "rules_file": absolute(self.rules_file),
            }
        )

    @classmethod
    def from_yaml_text(cls, text: str) -> AdsConfig:
        import yaml

        return cls.model_validate(yaml.safe_load(text) or {})


def ray_environment(config: AdsConfig, tmpdir: Path, local: bool) -> dict[str, str]:
    """Environment for Serve's controller, proxy and replicas. Serve reads these at import, so
    they must be in place before Ray starts (locally) or set on the cluster's pods."""
    env = {
        "RAY_USAGE_STATS_ENABLED": "0",
        # Direct ingress, user code on the replica's loop, gRPC between Serve's actors.
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        # Read before the throughput block, so it must be set explicitly.
        "RAY_SERVE_PROXY_USE_GRPC": "1",
        # Autoscaling reacts in seconds only if load metrics arrive every second.
        "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "1",
        "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(config.drain_period_s),
        "RAY_SERVE_LOG_TO_STDERR": "0",
        # Ray starts workers at nice 15, below everything else on the node; a replica is the
        # zone's hot path, not background work, and must not yield the CPU to its neighbours.
        "RAY_worker_niceness": "0",
    }
    if local:
        env["RAY_TMPDIR"] = str(tmpdir)
        # Ray 2.60 turns on token auth and writes ~/.ray/auth_token; a local cluster on
        # loopback (or in the zone's namespace) does not need it.
        env["RAY_AUTH_MODE"] = "disabled"
    return env
