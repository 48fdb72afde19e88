"""The topology model: the embedded default loads; mistakes are named precisely."""

from __future__ import annotations

import pytest

from services.contract.descriptors import load_descriptor_set, method_table
from services.topology import Endpoint, TopologyError, ZoneKind, load_topology, parse_topology
from services.topology.placement import check_placement

BASE = """
name: test
gateway: {listen: {host: 127.0.0.1, port: 50051}}
zones:
  - name: private
    kind: private
    services:
      - {name: orders, kind: orders, endpoints: [{host: 127.0.0.1, port: 50062}]}
  - name: public-b
    kind: public
    priority: 1
    services:
      - {name: ads-b, kind: ads, endpoints: [{host: 127.0.0.1, port: 50081}]}
  - name: public-a
    kind: public
    services:
      - {name: ads-a, kind: ads, endpoints: [{host: 127.0.0.1, port: 50071}]}
"""


def test_embedded_default_is_valid_and_placed_correctly() -> None:
    topology = load_topology()
    assert topology.zone("private").kind is ZoneKind.PRIVATE
    assert all(e.is_loopback for z in topology.zones for s in z.services for e in s.endpoints)
    assert check_placement(topology, method_table(load_descriptor_set())) == []


def test_public_zones_in_failover_order() -> None:
    assert [z.name for z in parse_topology(BASE).public_zones()] == ["public-a", "public-b"]


def test_unknown_key_is_rejected_with_its_path() -> None:
    text = BASE.replace("priority: 1", "priority: 1\n    prority: 2")
    with pytest.raises(TopologyError, match=r"zones\.1\.prority: Extra inputs are not permitted"):
        parse_topology(text, "t.yaml")


def test_duplicate_listen_address_is_named() -> None:
    text = BASE.replace("port: 50081", "port: 50071")
    with pytest.raises(TopologyError, match=r"duplicate listen address: 127\.0\.0\.1:50071"):
        parse_topology(text)


def test_bad_port_and_host_are_named() -> None:
    with pytest.raises(TopologyError, match=r"zones\.0\.services\.0\.endpoints\.0\.port"):
        parse_topology(BASE.replace("port: 50062", "port: 70000"))
    with pytest.raises(TopologyError, match="neither an IP address nor a DNS name"):
        parse_topology(BASE.replace("host: 127.0.0.1, port: 50062", "host: 'bad host', port: 1"))


def test_a_private_zone_is_required() -> None:
    text = BASE.replace("kind: private", "kind: public")
    with pytest.raises(TopologyError, match="needs a private zone"):
        parse_topology(text)


def test_sensitive_service_in_a_public_zone_is_a_placement_violation() -> None:
    text = BASE.replace("name: ads-a, kind: ads", "name: profile-a, kind: profile")
    violations = check_placement(parse_topology(text), method_table(load_descriptor_set()))
    assert [(v.subject, v.rule) for v in violations] == [("profile-a", "placement")]
    assert "public zone public-a" in violations[0].detail


def test_ray_only_in_public_zones() -> None:
    text = BASE.replace("kind: private\n", "kind: private\n    ray: {address: local}\n", 1)
    with pytest.raises(TopologyError, match="ray is only for public zones"):
        parse_topology(text)


def test_incomplete_tls_is_rejected() -> None:
    text = BASE.replace(
        "gateway: {listen: {host: 127.0.0.1, port: 50051}}",
        "gateway:\n  listen: {host: 127.0.0.1, port: 50051}\n"
        "  tls: {enabled: true, cert_file: /c.pem, require_client_cert: true}",
    )
    with pytest.raises(TopologyError, match="cert_file and key_file must be given together"):
        parse_topology(text)


def test_not_yaml_and_not_a_mapping() -> None:
    with pytest.raises(TopologyError, match="not valid YAML"):
        parse_topology("zones: [", "x.yaml")
    with pytest.raises(TopologyError, match="expected a mapping"):
        parse_topology("- 1")


@pytest.mark.parametrize(
    ("text", "host", "port", "address"),
    [("127.0.0.1:80", "127.0.0.1", 80, "127.0.0.1:80"), ("[::1]:9", "::1", 9, "[::1]:9")],
)
def test_endpoint_parse(text: str, host: str, port: int, address: str) -> None:
    endpoint = Endpoint.parse(text)
    assert (endpoint.host, endpoint.port, endpoint.address) == (host, port, address)
    assert endpoint.is_loopback


def test_endpoint_parse_rejects_missing_port() -> None:
    with pytest.raises(ValueError, match="is not host:port"):
        Endpoint.parse("localhost")
