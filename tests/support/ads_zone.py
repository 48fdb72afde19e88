"""Run a real public ads zone (`isthmus serve ads`: Ray + Serve) for system tests and benches,
and call its replicas the way the gateway does: straight to the direct-ingress endpoints
listed in the endpoints file, balanced round-robin, re-read as replicas come and go."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from isthmus.ads.v1 import ads_pb2, ads_pb2_grpc
from services.core.server import free_port
from tests.support.processes import start_cli_server


@dataclass
class AdsZoneProcess:
    proc: subprocess.Popen[str]
    grpc_port: int
    endpoints_file: Path
    status_file: Path

    def endpoints(self) -> list[str]:
        try:
            body = json.loads(self.endpoints_file.read_text())
        except (OSError, ValueError):
            return []
        return [f"{e['host']}:{e['port']}" for e in body["endpoints"]]

    def running_replicas(self) -> int:
        try:
            return int(json.loads(self.status_file.read_text())["replicas"].get("RUNNING", 0))
        except (OSError, ValueError, KeyError):
            return 0

    def wait_endpoints(self, at_least: int = 1, timeout_s: float = 120) -> list[str]:
        """Wait for `at_least` published endpoints and running replicas."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.endpoints()
            if len(found) >= at_least and self.running_replicas() >= at_least:
                return found
            if self.proc.poll() is not None:
                raise RuntimeError(f"ads zone exited with {self.proc.returncode}")
            time.sleep(0.25)
        raise TimeoutError(f"fewer than {at_least} replica endpoints after {timeout_s}s")

    def stop(self, timeout_s: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


def start_ads_zone(workdir: Path, config_yaml: str, port: int = 0) -> AdsZoneProcess:
    """`isthmus serve ads` in its own process group, with `config_yaml` as its AdsConfig."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "ads.yaml"
    config.write_text(config_yaml)
    run_dir = workdir / "run"
    proc, grpc_port = start_cli_server(
        *("serve", "ads", "--config", str(config), "--run-dir", str(run_dir)),
        *("--listen", f"127.0.0.1:{port or free_port()}"),
        log=workdir / "ads-zone.log",
        new_session=True,
    )
    endpoints = run_dir / "ads-a.endpoints.json"
    return AdsZoneProcess(proc, grpc_port, endpoints, run_dir / "ads-a.status.json")


def rank_request(n: int, request_id: str, user: str = "") -> ads_pb2.RankRequest:
    return ads_pb2.RankRequest(
        request_id=request_id,
        pseudonymous_user_id=user,
        context=ads_pb2.RankContext(placement_id="home", slot_count=5),
        candidates=[
            ads_pb2.Candidate(
                ad_id=f"ad-{i}",
                campaign_id=f"c-{i % 7}",
                item_id=str(i % 80),
                cpc_bid_micros=500_000 + 1000 * i,
                categories=[f"cat-{i % 5}"],
            )
            for i in range(n)
        ],
    )


@dataclass
class LoadStats:
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)


class BalancedLoad:
    """Load from `threads` threads over the zone's current replica endpoints: closed loop, or
    paced to `rate_per_s` calls a second in all (each thread sends on a fixed schedule)."""

    def __init__(
        self,
        zone: AdsZoneProcess,
        threads: int,
        candidates: int = 100,
        rate_per_s: float | None = None,
    ) -> None:
        self.zone = zone
        self.threads = threads
        self.candidates = candidates
        self.interval_s = threads / rate_per_s if rate_per_s else 0.0
        self.stats = LoadStats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stubs: dict[str, ads_pb2_grpc.AdServiceStub] = {}
        self._workers: list[threading.Thread] = []
        self._counter = itertools.count()

    def _stub(self) -> ads_pb2_grpc.AdServiceStub:
        targets = self.zone.endpoints()
        with self._lock:
            for target in targets:
                if target not in self._stubs:
                    self._stubs[target] = ads_pb2_grpc.AdServiceStub(grpc.insecure_channel(target))
            target = targets[next(self._counter) % len(targets)]
            return self._stubs[target]

    def _work(self, worker: int) -> None:
        n = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            if self.interval_s:
                next_at += self.interval_s
                if self._stop.wait(max(0.0, next_at - time.monotonic())):
                    break
            n += 1
            request = rank_request(self.candidates, f"w{worker}-{n}", user=f"user-{n % 50}")
            started = time.perf_counter()
            try:
                answer = self._stub().Rank(request, timeout=10)
            except grpc.RpcError as exc:
                with self._lock:
                    self.stats.errors[f"{exc.code().name}: {exc.details()}"] += 1
                continue
            with self._lock:
                self.stats.ok += 1
                self.stats.versions[answer.model_version] += 1
                self.stats.latencies_s.append(time.perf_counter() - started)

    def __enter__(self) -> BalancedLoad:
        for i in range(self.threads):
            thread = threading.Thread(target=self._work, args=(i,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(15)
