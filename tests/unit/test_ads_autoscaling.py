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
    BUSY_METRIC,
    BusyMeter,
    ReplicaLoadPolicy,
    desired_replicas,
)
from services.public.ads.config import AutoscalingSpec


def test_busy_time_drives_the_decision_when_calls_queue_outside_serve() -> None:
    # One saturated replica (busy 0.7) shows ~1 call in flight: busy time asks for more.
    assert desired_replicas(1.0, [0.7], 2.0, 0.5) == pytest.approx(1.4)
    # Calls queued inside Serve (batching) drive it when replicas are not busy.
    assert desired_replicas(9.0, [0.2, 0.2], 2.0, 0.5) == pytest.approx(4.5)
    # Idle: nothing needed; Serve's bounds keep min_replicas.
    assert desired_replicas(0.0, [0.01, 0.0], 2.0, 0.5) == pytest.approx(0.02)


def test_policy_rejects_nonpositive_targets() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReplicaLoadPolicy(target_ongoing_requests=0, target_busy=0.5)


def _context(config: AutoscalingConfig, replicas: int, busy: list[float], ongoing: float) -> Any:
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
        aggregated_metrics={BUSY_METRIC: dict(zip(ids, busy, strict=True))},
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
    # Saturated with barely one call in flight: up to 2 (0.7 / 0.5 rounded up).
    replicas, _ = decide(_context(config, 1, [0.7], ongoing=1.0))
    assert replicas == 2
    # Three busy replicas: 3 x 0.7 / 0.5 = 4.2, rounded up (max_replicas is applied later,
    # by the controller's deployment state).
    replicas, _ = decide(_context(config, 3, [0.7, 0.7, 0.7], ongoing=3.0))
    assert replicas == 5
    # Idle after the peak: down by half the surplus per step (downscaling_factor 0.5):
    # 4 + 0.5 x (0.08 - 4) = 2.04, rounded up.
    replicas, _ = decide(_context(config, 4, [0.01] * 4, ongoing=0.0))
    assert replicas == 3


def test_busy_meter_is_the_share_of_wall_time_spent_in_added_work() -> None:
    now = [100.0]
    meter = BusyMeter(clock=lambda: now[0])
    for _ in range(30):
        meter.add(0.01)
    now[0] += 1.0
    assert meter.read() == pytest.approx(0.3)
    now[0] += 2.0  # nothing ranked since
    assert meter.read() == 0.0
