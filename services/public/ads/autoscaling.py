"""How many ranking replicas the load needs: the autoscaling policy Serve's controller runs.

A ranking replica ranks on its event loop, one call at a time (handing each call to a worker
thread and back cost more than the ranking; see deployment.py). Calls waiting for the loop
queue in gRPC, before Serve counts them, so Serve's usual signal -- calls in flight per
replica -- stays near one however long the queue. Each replica therefore also reports how busy
it is: the share of wall time it spent ranking (`record_autoscaling_stats`), which is the mean
number of calls being ranked (Little's law: arrival rate x ranking time), 1.0 when saturated.
The policy asks for enough replicas to bring both signals to their targets, whichever needs
more:

    desired = max(ongoing calls / target_ongoing_requests, sum of replica busy / target_busy)

Busy time is utilisation, the signal Kubernetes' HorizontalPodAutoscaler scales on, counted
over ranking only, so a replica's own background work (loading a new model or snapshot,
health checks) does not look like load. The calls-in-flight signal still counts where calls
do queue inside Serve (batching, slow models). Serve applies the delays, scaling factors and
bounds of `AutoscalingSpec` around this function.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

BUSY_METRIC = "busy"
POLICY_PATH = "services.public.ads.autoscaling:ReplicaLoadPolicy"


def desired_replicas(
    ongoing_requests: float,
    busy_per_replica: Iterable[float],
    target_ongoing_requests: float,
    target_busy: float,
) -> float:
    """Replicas (fractional; Serve rounds up) that bring both signals to their targets."""
    by_queue = ongoing_requests / target_ongoing_requests
    by_busy = sum(busy_per_replica) / target_busy
    return max(by_queue, by_busy)


class ReplicaLoadPolicy:
    """Serve's class-style policy: built once by the controller with `policy_kwargs`,
    then called on every autoscaling tick with an `AutoscalingContext`."""

    def __init__(self, target_ongoing_requests: float, target_busy: float) -> None:
        if target_ongoing_requests <= 0 or target_busy <= 0:
            raise ValueError("autoscaling targets must be positive")
        self.target_ongoing_requests = target_ongoing_requests
        self.target_busy = target_busy

    def __call__(self, ctx: Any) -> tuple[float, dict[str, Any]]:
        if ctx.current_num_replicas == 0:
            return ctx.target_num_replicas, {}
        metrics: Mapping[str, Mapping[Any, float]] = ctx.aggregated_metrics or {}
        busy = metrics.get(BUSY_METRIC, {})
        return (
            desired_replicas(
                ctx.total_num_requests,
                busy.values(),
                self.target_ongoing_requests,
                self.target_busy,
            ),
            {},
        )


class BusyMeter:
    """Share of wall time spent in `add`ed work since the last reading."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since = clock()
        self._busy = 0.0

    def add(self, seconds: float) -> None:
        self._busy += seconds

    def read(self) -> float:
        now = self._clock()
        elapsed, busy = now - self._since, self._busy
        self._since, self._busy = now, 0.0
        return busy / elapsed if elapsed > 0 else 0.0
