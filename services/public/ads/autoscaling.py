"""How many ranking replicas the load needs: the autoscaling policy Serve's controller runs.

A ranking replica ranks on its event loop, one call at a time (handing each call to a worker
thread and back cost more than the ranking; see deployment.py). Calls waiting for the loop
queue in gRPC, before Serve counts them, so Serve's usual signal -- calls in flight per
replica -- stays near one however long the queue. Each replica therefore also reports the CPU
it used per second of wall time (`record_autoscaling_stats`), and the policy asks for enough
replicas to bring both signals to their targets, whichever needs more:

    desired = max(ongoing calls / target_ongoing_requests, sum of replica CPU / target_cpu)

The CPU signal is what Kubernetes' HorizontalPodAutoscaler scales on; the calls-in-flight
signal still counts where calls do queue inside Serve (batching, slow models). Serve applies
the delays, scaling factors and bounds of `AutoscalingSpec` around this function.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

CPU_METRIC = "cpu"
POLICY_PATH = "services.public.ads.autoscaling:ReplicaLoadPolicy"


def desired_replicas(
    ongoing_requests: float,
    cpu_per_replica: Iterable[float],
    target_ongoing_requests: float,
    target_cpu: float,
) -> float:
    """Replicas (fractional; Serve rounds up) that bring both signals to their targets."""
    by_queue = ongoing_requests / target_ongoing_requests
    by_cpu = sum(cpu_per_replica) / target_cpu
    return max(by_queue, by_cpu)


class ReplicaLoadPolicy:
    """Serve's class-style policy: built once by the controller with `policy_kwargs`,
    then called on every autoscaling tick with an `AutoscalingContext`."""

    def __init__(self, target_ongoing_requests: float, target_cpu: float) -> None:
        if target_ongoing_requests <= 0 or target_cpu <= 0:
            raise ValueError("autoscaling targets must be positive")
        self.target_ongoing_requests = target_ongoing_requests
        self.target_cpu = target_cpu

    def __call__(self, ctx: Any) -> tuple[float, dict[str, Any]]:
        if ctx.current_num_replicas == 0:
            return ctx.target_num_replicas, {}
        metrics: Mapping[str, Mapping[Any, float]] = ctx.aggregated_metrics or {}
        cpu = metrics.get(CPU_METRIC, {})
        return (
            desired_replicas(
                ctx.total_num_requests,
                cpu.values(),
                self.target_ongoing_requests,
                self.target_cpu,
            ),
            {},
        )


class CpuMeter:
    """CPU seconds this process used per wall-clock second since the last reading (all
    threads: the event loop, gRPC's poller, onnxruntime's)."""

    def __init__(self) -> None:
        self._wall = time.monotonic()
        self._cpu = time.process_time()

    def read(self) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        elapsed = wall - self._wall
        used = cpu - self._cpu
        self._wall, self._cpu = wall, cpu
        return used / elapsed if elapsed > 0 else 0.0
