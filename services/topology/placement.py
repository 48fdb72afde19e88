"""Placement rules that tie the topology to the API contract (pure functions)."""

from __future__ import annotations

from services.contract.descriptors import ContractViolation, MethodInfo
from services.topology.model import Topology, ZoneKind


def check_placement(topology: Topology, table: dict[str, MethodInfo]) -> list[ContractViolation]:
    """A service with any SENSITIVE RPC may run only in a private zone; every RPC it serves
    must declare a sensitivity. Returns one violation per misplaced service."""
    violations = []
    for zone in topology.zones:
        for spec in zone.services:
            methods = [m for m in table.values() if m.service == spec.proto_service]
            if not methods:
                violations.append(
                    ContractViolation(
                        "placement", spec.name, f"{spec.proto_service} has no RPCs in the contract"
                    )
                )
                continue
            sensitive = [m.name for m in methods if not m.is_public]
            if sensitive and zone.kind is not ZoneKind.PRIVATE:
                violations.append(
                    ContractViolation(
                        "placement",
                        spec.name,
                        f"serves non-PUBLIC RPCs ({', '.join(sorted(sensitive))}) but runs in "
                        f"{zone.kind} zone {zone.name}; only private zones may",
                    )
                )
    return violations
