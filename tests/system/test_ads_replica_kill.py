"""A ranking replica killed with SIGKILL under load, behind the real gateway: Serve starts a
replacement, the zone republishes its endpoints, and no caller sees a failed call or a
degraded (model-less) answer."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from isthmus.ads.v1 import ads_pb2_grpc
from services.core.secret_ref import SecretRef
from services.core.server import free_port
from services.gateway.auth import issue_token
from tests.support.ads_zone import AdsZoneProcess, rank_request, start_ads_zone
from tests.support.ctr import publish_model
from tests.support.processes import listening_pid, start_cli_server

ZONE = """
registry_dir: {registry}
features_dir: null
replica_num_cpus: 0.5
drain_period_s: 3
autoscaling: {{min_replicas: 2, max_replicas: 2}}
"""

TOPOLOGY = """
name: kill-test
gateway:
  listen: {{host: 127.0.0.1, port: {port}}}
zones:
  - name: private  # required by the topology; nothing listens there in this test
    kind: private
    services:
      - name: profile
        kind: profile
        endpoints: [{{host: 127.0.0.1, port: {unused}}}]
  - name: public-a
    kind: public
    services:
      - name: ads-a
        kind: ads
        endpoints_file: {endpoints}
        health_check: serve_healthz
"""

GATEWAY = """
auth:
  token_key: {{file: {key}, create_if_missing: true}}
  callers:
    - name: ad-server
      allow: [/isthmus.ads.v1.AdService/Rank]
"""


@pytest.fixture
def zone(tmp_path: Path) -> Iterator[AdsZoneProcess]:
    registry = tmp_path / "models"
    publish_model(registry, seed=1)
    process = start_ads_zone(tmp_path / "zone", ZONE.format(registry=registry))
    try:
        process.wait_endpoints(2)
        yield process
    finally:
        process.stop()


def endpoint_ids(zone: AdsZoneProcess) -> set[str]:
    return {e["id"] for e in json.loads(zone.endpoints_file.read_text())["endpoints"]}


def test_killed_replica_is_replaced_and_no_call_fails(zone: AdsZoneProcess, tmp_path: Path) -> None:
    gateway_port = free_port()
    topology = tmp_path / "topology.yaml"
    topology.write_text(
        TOPOLOGY.format(port=gateway_port, unused=free_port(), endpoints=zone.endpoints_file)
    )
    overrides = tmp_path / "gateway.yaml"
    key_file = tmp_path / "gateway-token.key"
    overrides.write_text(GATEWAY.format(key=key_file))
    gateway, _ = start_cli_server(
        *("gateway", "--topology", str(topology), "--config", str(overrides)),
        log=tmp_path / "gateway.log",
    )
    try:
        token = issue_token(SecretRef(file=key_file).read(), "ad-server", int(time.time()) + 600)
        metadata = (("authorization", f"Bearer {token}"),)
        stub = ads_pb2_grpc.AdServiceStub(grpc.insecure_channel(f"127.0.0.1:{gateway_port}"))
        stub.Rank(rank_request(20, "warm-up"), metadata=metadata, timeout=30)

        outcomes: Counter[str] = Counter()
        lock = threading.Lock()
        stop = threading.Event()

        def caller(worker: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    answer = stub.Rank(
                        rank_request(100, f"k{worker}-{n}"), metadata=metadata, timeout=10
                    )
                    outcome = "degraded" if answer.degraded else "model"
                except grpc.RpcError as exc:
                    outcome = f"{exc.code().name}: {exc.details()}"
                with lock:
                    outcomes[outcome] += 1

        before = endpoint_ids(zone)
        victim = json.loads(zone.endpoints_file.read_text())["endpoints"][0]
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(3)
            calls_before_kill = sum(outcomes.values())
            os.kill(listening_pid(victim["port"]), signal.SIGKILL)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                ids = endpoint_ids(zone)
                if len(ids) == 2 and victim["id"] not in ids and zone.running_replicas() == 2:
                    break
                time.sleep(0.5)
            replaced = endpoint_ids(zone)
            time.sleep(3)  # load on the replacement too
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)

    assert calls_before_kill > 0
    assert victim["id"] not in replaced, (before, replaced)
    assert len(replaced) == 2, (before, replaced)
    failed = {k: v for k, v in outcomes.items() if k != "model"}
    assert not failed, f"calls that failed or fell back to bid-only ranking: {failed}"
    assert outcomes["model"] > calls_before_kill
