"""The Ray Serve deployment that answers `isthmus.ads.v1.AdService/Rank` over Serve's gRPC
ingress (through Serve's proxy, or straight to each replica's direct-ingress port).

Each replica wraps a `RankService`: it loads the registry's rollout at start (a replica with
no loadable model fails its start, with the registry's message), then refreshes models, rules
and features in the background; a new version is loaded beside the old one and swapped in,
so no call fails during a swap. Errors become gRPC statuses through `to_status`, the one
mapping in the codebase; this module's logs name an error's type and place, never its text.
Serve's health check asks `RefreshHealth` (health.py): a replica none of whose refreshes has
finished for a while (each raised, or one hangs) is replaced.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

from ray import serve
from ray.serve.metrics import Counter

from isthmus.ads.v1 import ads_pb2
from services.core.errors import to_status
from services.public.ads.autoscaling import BUSY_METRIC, BusyMeter
from services.public.ads.config import DEPLOYMENT, SERVICER, AdsConfig
from services.public.ads.health import RefreshHealth, describe
from services.public.ads.service import RankService

log = logging.getLogger(__name__)
__all__ = ["DEPLOYMENT", "SERVICER", "AdRanker", "app_from_args", "build_app"]


def exclusive_direct_ingress_port() -> None:
    """Make this replica's direct-ingress gRPC server bind its port exclusively, as Serve
    intends. Serve asks gRPC for `grpc.so_reuseport` 0 as the *string* "0", which gRPC ignores
    (it keeps its default: SO_REUSEPORT on). Serve hands out ports per node, so where two
    nodes share an address (a zone's nodes in one namespace, locally) replicas on both bound
    port 40000: the kernel split the connections between them and the gateway, one endpoint
    per address, saw one replica where there were two. With the option an integer, the
    second bind fails and Serve's own retry moves that replica to the next port."""
    from ray.serve._private import grpc_util

    original = grpc_util.gRPCGenericServer
    if getattr(original, "isthmus_exclusive_port", False):
        return

    class ExclusivePortServer(original):  # type: ignore[misc,valid-type]
        isthmus_exclusive_port = True

        def __init__(self, *args: Any, extra_options: Any = None, **kwargs: Any) -> None:
            fixed = [
                (key, int(value)) if key == "grpc.so_reuseport" else (key, value)
                for key, value in (extra_options or [])
            ]
            super().__init__(*args, extra_options=fixed, **kwargs)

    grpc_util.gRPCGenericServer = ExclusivePortServer  # type: ignore[misc]


@serve.deployment(name=DEPLOYMENT)
class AdRanker:
    def __init__(self, config: dict[str, Any]) -> None:
        logging.basicConfig(level=logging.INFO)
        exclusive_direct_ingress_port()  # before Serve starts this replica's server
        self._config = AdsConfig.model_validate(config)
        self._service = RankService(self._config)
        self._health = RefreshHealth(
            stale_after_s=self._config.refresh_interval_s
            * self._config.unhealthy_after_refresh_intervals,
            last_finished_s=time.monotonic(),  # the constructor has just loaded everything
        )
        self._answers = Counter(
            "isthmus_rank_answers",
            description="Rank answers by model version (shows a canary split).",
            tag_keys=("model_version",),
        )
        # Counted in a dict and flushed to the metric once a second: a metric update per call
        # costs as much as a tenth of the ranking.
        self._unflushed: collections.Counter[str] = collections.Counter()
        self._busy = BusyMeter()
        batching = self._config.batching
        self._batched = batching.enabled
        if batching.enabled:
            batcher: Any = self._rank_batch
            batcher.set_max_batch_size(batching.max_batch_size)
            batcher.set_batch_wait_timeout_s(batching.wait_timeout_s)
        loop = asyncio.get_event_loop()
        self._refresher = loop.create_task(self._refresh_forever())
        self._flusher = loop.create_task(self._flush_forever())
        log.info("ranking replica ready: %s", self._service.health())

    async def Rank(
        self, request: ads_pb2.RankRequest, grpc_context: Any = None
    ) -> ads_pb2.RankResponse:
        try:
            if self._batched:
                answer = await self._rank_batch(request)
                if isinstance(answer, Exception):
                    raise answer
            else:
                # Ranking runs on the replica's event loop. A worker thread would let calls
                # pile up inside Serve, where they count as ongoing (Serve's usual scaling
                # signal), but handing each call to it and back costs more than the ranking
                # under the GIL (bench/ads_bench.py: 0.67x of a plain grpc.aio server's
                # req/s on a thread, 0.87x on the loop); the autoscaler reads busy time instead
                # (record_autoscaling_stats, autoscaling.py).
                started = time.perf_counter()
                answer = self._service.rank(request)
                self._busy.add(time.perf_counter() - started)
        except Exception as exc:
            reply = to_status(exc)
            if reply.code.name == "INTERNAL":
                log.error("Rank failed: %s", describe(exc))
            if grpc_context is not None:
                grpc_context.set_code(reply.code)
                grpc_context.set_details(reply.message)
                if reply.trailing_metadata:
                    grpc_context.set_trailing_metadata(list(reply.trailing_metadata))
            return ads_pb2.RankResponse()
        self._unflushed[answer.model_version] += 1
        return answer

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def _rank_batch(
        self, requests: list[ads_pb2.RankRequest]
    ) -> list[ads_pb2.RankResponse | Exception]:
        started = time.perf_counter()
        answers = self._service.rank_many(requests)
        self._busy.add(time.perf_counter() - started)
        return answers

    def record_autoscaling_stats(self) -> dict[str, float]:
        """Share of the time since the last reading spent ranking: the policy's load signal."""
        return {BUSY_METRIC: self._busy.read()}

    def check_health(self) -> None:
        """Serve's health check: unhealthy without a ready model, or when no refresh has
        finished for a while (Serve then replaces the replica; see health.py)."""
        if not self._service.models.stable.ready:
            raise RuntimeError("model not ready")
        problem = self._health.problem(time.monotonic())
        if problem is not None:
            raise RuntimeError(problem)

    def status(self) -> dict[str, Any]:
        health = self._service.health()
        return {
            **health.__dict__,
            "served": dict(self._service.served),
            "failed_refreshes": self._health.failures,
        }

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            counts, self._unflushed = self._unflushed, collections.Counter()
            for version, n in counts.items():
                self._answers.inc(n, tags={"model_version": version})

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.refresh_interval_s)
            try:
                changed = await asyncio.to_thread(self._service.refresh)
            except Exception as exc:
                self._health.failed(exc)
                log.error(
                    "refresh failed (%s), %d in a row; serving what was loaded",
                    self._health.last_failure,
                    self._health.failures,
                )
                continue
            self._health.finished(time.monotonic())
            if changed:
                log.info("refreshed: %s", self._service.health())


def build_app(config: AdsConfig) -> Any:
    """The Serve application, with autoscaling and replica options from config."""
    deployment: Any = AdRanker  # a serve.Deployment once decorated
    return deployment.options(**config.deployment_options()).bind(config.model_dump(mode="json"))


def app_from_args(args: dict[str, Any]) -> Any:
    """Serve's application builder for a config file (`import_path:
    services.public.ads.deployment:app_from_args`, as KubeRay's `serveConfigV2` names it):
    `args` is an AdsConfig as a dict. The `deployments` section of that file carries the same
    autoscaling and replica options (services/deploy/serve_config.py writes both from one
    AdsConfig), and Serve lets the file's section win."""
    return build_app(AdsConfig.model_validate(args))
