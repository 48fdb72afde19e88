"""The ranking deployment's autoscaling policy: the decision as a pure function, and the policy
run the way Serve's controller runs it (built from the config we ship, wrapped with Serve's
delays, factors and bounds)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from ray.serve._private.common import DeploymentID, ReplicaID
from ray.serve.autoscaling_policy import _apply_autoscaling_config
from ray.serve.config import AutoscalingConfig, AutoscalingContext

from services.public.ads.autoscaling import (
    CPU_METRIC,
    CpuMeter,
    ReplicaLoadPolicy,
    desired_replicas,
)
from services.public.ads.config import AutoscalingSpec


def test_cpu_drives_the_decision_when_calls_queue_outside_serve() -> None:
    # One saturated replica (1.0 CPU) shows ~1 call in flight: the CPU signal asks for two.
    assert desired_replicas(1.0, [1.0], 2.0, 0.6) == pytest.approx(1 / 0.6)
    # Calls queued inside Serve (batching) drive it when CPU is low.
    assert desired_replicas(9.0, [0.2, 0.2], 2.0, 0.6) == pytest.approx(4.5)
    # Idle: nothing needed; Serve's bounds keep min_replicas.
    assert desired_replicas(0.0, [0.01, 0.0], 2.0, 0.6) == pytest.approx(0.01 / 0.6)


def test_policy_rejects_nonpositive_targets() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReplicaLoadPolicy(target_ongoing_requests=0, target_cpu=0.6)


def _context(config: AutoscalingConfig, replicas: int, cpu: list[float], ongoing: float) -> Any:
    deployment = DeploymentID(name="AdRanker", app_name="ads")
    ids = [ReplicaID(unique_id=f"r{i}", deployment_id=deployment) for i in range(replicas)]
    return AutoscalingContext(
        deployment_id=deployment,
        deployment_name="AdRanker",
        app_name="ads",
        current_num_replicas=replicas,
        target_num_replicas=replicas,
        running_replicas=ids,
        total_num_requests=ongoing,
        total_queued_requests=0.0,
        aggregated_metrics={CPU_METRIC: dict(zip(ids, cpu, strict=True))},
        raw_metrics={},
        capacity_adjusted_min_replicas=config.min_replicas,
        capacity_adjusted_max_replicas=config.max_replicas,
        policy_state={},
        last_scale_up_time=None,
        last_scale_down_time=None,
        current_time=time.time(),
        config=config,
    )


def test_shipped_config_builds_our_policy_and_serve_scales_a_saturated_replica_up() -> None:
    spec = AutoscalingSpec(upscale_delay_s=0, downscale_delay_s=0)
    config = AutoscalingConfig(**spec.to_serve())
    policy = config.policy.get_policy()
    assert policy is ReplicaLoadPolicy
    decide = _apply_autoscaling_config(policy(**config.policy.policy_kwargs))
    # Saturated on CPU with barely one call in flight: up to 2 (1.0 / 0.6 rounded up).
    replicas, _ = decide(_context(config, 1, [1.0], ongoing=1.0))
    assert replicas == 2
    # Three busy replicas: 3 x 0.95 / 0.6 = 4.75, rounded up (max_replicas is applied later,
    # by the controller's deployment state).
    replicas, _ = decide(_context(config, 3, [0.95, 0.95, 0.95], ongoing=3.0))
    assert replicas == 5
    # Idle after the peak: down by half the surplus per step (downscaling_factor 0.5):
    # 4 + 0.5 x (0.07 - 4) = 2.03, rounded up.
    replicas, _ = decide(_context(config, 4, [0.01] * 4, ongoing=0.0))
    assert replicas == 3


def test_cpu_meter_reads_this_process_busy_and_idle() -> None:
    meter = CpuMeter()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        pass
    assert meter.read() > 0.5  # the loop above kept a CPU busy
    time.sleep(0.3)
    assert meter.read() < 0.3  # asleep
