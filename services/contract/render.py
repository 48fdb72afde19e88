"""Plain-text views of the contract and topology for the CLI (pure string building)."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pb2

from isthmus.options.v1 import options_pb2
from services.contract.descriptors import MethodInfo
from services.topology.model import Topology


def describe_methods(methods: Iterable[MethodInfo]) -> str:
    rows: list[tuple[str, ...]] = [("RPC", "SENSITIVITY", "IDEMPOTENCY")]
    for m in sorted(methods, key=lambda m: m.path):
        declared = options_pb2.Sensitivity.Name(m.sensitivity).removeprefix("SENSITIVITY_")
        rows.append(
            (
                m.path,
                declared if declared != "UNSPECIFIED" else "UNSPECIFIED (treated as SENSITIVE)",
                descriptor_pb2.MethodOptions.IdempotencyLevel.Name(m.idempotency_level),
            )
        )
    return _table(rows)


def describe_topology(topology: Topology, table: dict[str, MethodInfo]) -> str:
    lines = [f"topology {topology.name}: gateway on {topology.gateway.listen.address}"]
    for zone in topology.zones:
        lines.append(f"  zone {zone.name} ({zone.kind}, priority {zone.priority})")
        for spec in zone.services:
            rpcs = sorted(m.name for m in table.values() if m.service == spec.proto_service)
            endpoints = ", ".join(e.address for e in spec.endpoints) or (
                f"endpoints from {spec.endpoints_file}"
            )
            lines.append(
                f"    {spec.name}: {spec.proto_service} [{', '.join(rpcs)}] at {endpoints}"
            )
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
