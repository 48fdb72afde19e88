"""Which clusters a call may go to (pure).

The sensitivity rule is enforced twice: a configuration that could send a SENSITIVE (or
undeclared) method to a public cluster is rejected at load, and at call time the eligible
clusters of such a method are filtered to private ones whatever the configuration says.
A route's fallback (fallbacks.py) applies only to the one method its hook answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.contract.descriptors import MethodInfo
from services.gateway import fallbacks
from services.gateway.config import ClusterConfig, GatewayConfig, RouteConfig
from services.topology.model import ZoneKind


class RoutingError(ValueError):
    """The routing configuration breaks a rule; the message names route, method and cluster."""


@dataclass(frozen=True, slots=True)
class RouteTable:
    routes: tuple[RouteConfig, ...]
    clusters: dict[str, ClusterConfig]
    methods: dict[str, MethodInfo]

    def route_for(self, path: str) -> RouteConfig | None:
        """First route whose match takes `path`."""
        return next((r for r in self.routes if r.match.matches(path)), None)

    def eligible_clusters(self, route: RouteConfig, method: MethodInfo) -> list[ClusterConfig]:
        """The route's clusters in order, minus any the method may not reach."""
        clusters = [self.clusters[name] for name in route.clusters]
        if method.is_public:
            return clusters
        return [c for c in clusters if c.zone_kind is ZoneKind.PRIVATE]

    def attempts_per_cluster(self, route: RouteConfig, method: MethodInfo) -> int:
        """Retries only for methods the protos declare retry-safe, never for client streams."""
        if not method.retry_safe or method.client_streaming:
            return 1
        return route.max_attempts

    def fallback_for(self, route: RouteConfig, method: MethodInfo) -> str | None:
        """The named fallback that may answer `method` when no cluster can, if any."""
        return route.fallback if fallbacks.answers(route, method.path) else None


def build_route_table(config: GatewayConfig, methods: dict[str, MethodInfo]) -> RouteTable:
    """Validate routes against the contract; raise RoutingError listing every problem."""
    clusters = {c.name: c for c in config.clusters}
    problems: list[str] = []
    for method in methods.values():
        # Only the first matching route ever sees the method.
        route = next((r for r in config.routes if r.match.matches(method.path)), None)
        if route is None or method.is_public:
            continue
        public = [n for n in route.clusters if clusters[n].zone_kind is not ZoneKind.PRIVATE]
        if public:
            problems.append(
                f"route {route.name} sends non-PUBLIC {method.path} to public cluster(s) "
                f"{', '.join(public)}"
            )
    problems += [p for p in map(fallbacks.misplaced, config.routes) if p is not None]
    if problems:
        raise RoutingError("; ".join(problems))
    return RouteTable(tuple(config.routes), clusters, dict(methods))
