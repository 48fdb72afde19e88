"""Named fallback answers: what a route may answer when none of its clusters can.

A route names its hook (`RouteConfig.fallback`); the generic proxy knows hooks only by that
name and calls them with the request's bytes. Each hook answers one method and is prepared
once per configuration (at start and on every ReloadConfig), reading what it needs then, so a
broken input is refused with the configuration instead of failing calls. Prepared answers
compare equal when they would answer alike, so a reload can tell that a hook's inputs changed.

    ads_bid_only  AdService/Rank ranked by bid under the ad policy (degraded.py)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from services.gateway import degraded
from services.gateway.config import GatewayConfig, RouteConfig

Answer = Callable[[bytes], bytes]  # serialized request -> serialized response


@dataclass(frozen=True, slots=True)
class Fallback:
    method: str  # the one method it can answer, "/pkg.Service/Method"
    prepare: Callable[[GatewayConfig], Answer]  # raises ValueError naming what is broken


FALLBACKS: Mapping[str, Fallback] = MappingProxyType(
    {"ads_bid_only": Fallback(degraded.RANK_METHOD, degraded.prepare)}
)


def answers(route: RouteConfig, path: str) -> bool:
    """Whether the route's fallback may answer a call to `path`."""
    hook = FALLBACKS.get(route.fallback)
    return hook is not None and hook.method == path


def misplaced(route: RouteConfig) -> str | None:
    """Why the route's fallback can never apply (a method match naming another method)."""
    hook = FALLBACKS.get(route.fallback)
    if hook is None or route.match.method in (None, hook.method):
        return None
    return f"route {route.name}: fallback {route.fallback} answers only {hook.method}"


def prepare_fallbacks(config: GatewayConfig) -> dict[str, Answer]:
    """Every fallback the routes name, prepared; raises ValueError naming what is broken."""
    names = sorted({r.fallback for r in config.routes if r.fallback in FALLBACKS})
    return {name: FALLBACKS[name].prepare(config) for name in names}


def changed(old: Mapping[str, Answer], new: Mapping[str, Answer]) -> list[str]:
    """Fallbacks in use before and after whose prepared answers differ (new rules, say)."""
    return [f"fallback {n} changed" for n in sorted(old.keys() & new.keys()) if old[n] != new[n]]
