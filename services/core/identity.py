"""Who is calling: from the client certificate, or from the header the gateway sets."""

from __future__ import annotations

import contextvars
import enum
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.core.config import CallerPolicy

CALLER_HEADER = "x-isthmus-caller"
_CALLER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")


class CallerSource(enum.StrEnum):
    """How the caller's identity was established."""

    CERTIFICATE = "certificate"  # the peer's own verified client certificate
    FORWARDED = "forwarded"  # named by a trusted forwarder (the gateway) over mTLS
    ASSERTED = "asserted"  # header on plaintext, believed by local policy
    ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Caller:
    """The principal a call runs for; what audit records and authorization use."""

    name: str
    source: CallerSource


ANONYMOUS = Caller("anonymous", CallerSource.ANONYMOUS)
_current: contextvars.ContextVar[Caller] = contextvars.ContextVar(
    "isthmus_caller", default=ANONYMOUS
)


def current_caller() -> Caller:
    """The caller of the RPC being handled (set by the server interceptor)."""
    return _current.get()


def bind_caller(caller: Caller) -> contextvars.Token[Caller]:
    return _current.set(caller)


def unbind_caller(token: contextvars.Token[Caller]) -> None:
    _current.reset(token)


def resolve_caller(
    peer_names: Iterable[str], asserted: str | None, policy: CallerPolicy, peer: str = ""
) -> Caller:
    """Decide who is calling. Pure.

    `peer_names` are the verified certificate names of the TCP peer (empty without mTLS);
    `asserted` is the x-isthmus-caller header, if any. A header is believed only from a trusted
    forwarder, or on plaintext when the policy says so; a malformed header is ignored.
    """
    names = sorted(set(peer_names))
    asserted = asserted if asserted and _CALLER_NAME.match(asserted) else None
    if names:
        if asserted and policy.trusted_forwarders.intersection(names):
            return Caller(asserted, CallerSource.FORWARDED)
        return Caller(names[0], CallerSource.CERTIFICATE)
    if asserted and policy.trust_header_without_tls:
        return Caller(asserted, CallerSource.ASSERTED)
    if asserted and policy.trusted_peer_networks and _peer_in(peer, policy):
        return Caller(asserted, CallerSource.ASSERTED)
    return ANONYMOUS


def _peer_in(peer: str, policy: CallerPolicy) -> bool:
    """Is gRPC's peer string ("ipv4:10.77.1.1:4242", "ipv6:[::1]:4242") in a trusted network?"""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return False
    host = rest.rsplit(":", 1)[0].strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in policy.trusted_peer_networks)


def peer_names_from_auth_context(auth_context: Mapping[str, Iterable[bytes]]) -> list[str]:
    """Certificate names gRPC verified for the peer (common name and subject alt names)."""
    names: list[str] = []
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        names.extend(v.decode("utf-8", "replace") for v in auth_context.get(key, ()))
    return names
