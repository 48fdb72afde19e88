"""The topology: the one validated model of zones, services, endpoints and TLS material."""

from services.topology.load import TopologyError, load_topology, parse_topology
from services.topology.model import (
    Endpoint,
    GatewaySpec,
    ServiceKind,
    ServiceSpec,
    TlsConfig,
    Topology,
    ZoneKind,
    ZoneSpec,
)

__all__ = [
    "Endpoint",
    "GatewaySpec",
    "ServiceKind",
    "ServiceSpec",
    "TlsConfig",
    "Topology",
    "TopologyError",
    "ZoneKind",
    "ZoneSpec",
    "load_topology",
    "parse_topology",
]
