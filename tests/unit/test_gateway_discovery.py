"""The endpoints file: parsing, diffing, and the poller's keep-last-good rules (no network)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from services.gateway.config import ClusterConfig, from_topology
from services.gateway.discovery import FileEndpointSource, diff, parse_endpoints_file
from services.topology.model import Endpoint, ServiceSpec, Topology, ZoneKind


def body(generation: int = 1, service: str = "ads-a", **extra: Any) -> bytes:
    endpoints = extra.pop(
        "endpoints", [{"host": "127.0.0.1", "port": 40001, "id": "r1"}, {"host": "::1", "port": 2}]
    )
    doc = {"service": service, "generation": generation, "updated_unix_s": 1.5}
    doc["endpoints"] = endpoints
    doc.update(extra)
    return json.dumps(doc).encode()


def test_parse_reads_addresses_and_ignores_unknown_keys() -> None:
    parsed = parse_endpoints_file(body(7, app="ads", note="x"), "ads-a")
    assert parsed.generation == 7
    assert parsed.addresses() == ["127.0.0.1:40001", "[::1]:2"]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"{", "not JSON"),
        (body(service="ads-b"), "not 'ads-a'"),
        (body(generation=-1), "generation"),
        (body(endpoints=[{"host": "127.0.0.1", "port": 0}]), "endpoints.0.port"),
        (body(endpoints=[{"host": "bad host", "port": 1}]), "neither an IP"),
        (b'{"service": "ads-a", "generation": 1, "endpoints": []}', "updated_unix_s"),
        (b"[]", "(top)"),
    ],
)
def test_parse_rejects_with_a_reason(data: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_endpoints_file(data, "ads-a")


def test_diff_is_stable() -> None:
    assert diff(["a", "b", "c"], ["c", "d", "a", "e"]) == (["d", "e"], ["b"])
    assert diff([], []) == ([], [])


def test_source_keeps_the_last_good_generation(tmp_path: Path) -> None:
    path = tmp_path / "eps.json"
    source = FileEndpointSource(path, "ads-a")
    assert source.poll() is None  # missing: nothing yet
    path.write_bytes(body(3))
    assert source.poll() == ["127.0.0.1:40001", "[::1]:2"]
    assert source.poll() is None  # unchanged: not even read again
    path.write_bytes(b"garbage!")
    assert source.poll() is None
    path.write_bytes(body(2, endpoints=[]))  # older generation
    assert source.poll() is None
    assert source.generation == 3
    path.write_bytes(body(4, endpoints=[]))
    os.utime(path, ns=(1, 1))  # a different mtime even on a coarse clock
    assert source.poll() == []


def test_a_service_has_static_endpoints_or_a_file_not_both(tmp_path: Path) -> None:
    ep = Endpoint(host="127.0.0.1", port=1)
    with pytest.raises(ValueError, match="exactly one"):
        ServiceSpec(name="ads-a", kind="ads", endpoints=[ep], endpoints_file=tmp_path / "f")
    with pytest.raises(ValueError, match="exactly one"):
        ServiceSpec(name="ads-a", kind="ads")
    with pytest.raises(ValueError, match="exactly one"):
        ClusterConfig(name="c", zone="z", zone_kind=ZoneKind.PUBLIC)


def test_topology_file_discovery_reaches_the_gateway_cluster(tmp_path: Path) -> None:
    topology = Topology.model_validate(
        {
            "name": "test",
            "gateway": {"listen": {"host": "127.0.0.1", "port": 0}},
            "zones": [
                {"name": "private", "kind": "private"},
                {
                    "name": "public-a",
                    "kind": "public",
                    "services": [
                        {
                            "name": "ads-a",
                            "kind": "ads",
                            "endpoints_file": str(tmp_path / "ads-a.json"),
                            "health_check": "serve_healthz",
                        }
                    ],
                },
            ],
        }
    )
    (cluster,) = from_topology(topology).clusters
    assert cluster.endpoints == []
    assert cluster.endpoints_file == tmp_path / "ads-a.json"
    assert cluster.health_check == "serve_healthz"
