"""Who may call what, how often: authentication, authorization, rate limiting (one place)."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from services.core.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from services.core.identity import peer_names_from_auth_context
from services.gateway.auth import TokenBucket, TokenVerifier, bearer_token, is_allowed
from services.gateway.config import AuthConfig, CallerConfig

MAX_CACHED_TOKENS = 10_000
ANONYMOUS = CallerConfig(name="anonymous", allow=["*"], rate_per_s=1e9, burst=1_000_000_000)


class Admission:
    def __init__(self, config: AuthConfig, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._verifier = TokenVerifier.from_config(config)
        self._by_name = {c.name: c for c in config.callers}
        self._by_cert = {n: c for c in config.callers for n in c.certificate_names}
        self._buckets = {c.name: TokenBucket(c.rate_per_s, c.burst) for c in config.callers}
        self._clock = clock
        # Callers reuse one token for many calls: remember verified tokens until they expire.
        self._verified_tokens: dict[str, tuple[str, float]] = {}

    def admit(self, context: grpc.aio.ServicerContext, path: str) -> CallerConfig:
        """The caller of this call, if it may make it now; a domain error otherwise."""
        caller = self._authenticate(context)
        if not is_allowed(caller, path):
            raise PermissionDenied(f"caller {caller.name} may not call {path}")
        bucket = self._buckets.get(caller.name)
        if bucket is not None and not bucket.take(self._clock()):
            raise ResourceExhausted(
                f"caller {caller.name} is over its rate limit of {caller.rate_per_s:g} calls/s"
            )
        return caller

    def _verified(self, token: str) -> str:
        now = self._clock()
        hit = self._verified_tokens.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        verified = self._verifier.verify(token, now)
        if len(self._verified_tokens) >= MAX_CACHED_TOKENS:
            self._verified_tokens.clear()
        self._verified_tokens[token] = (verified.caller, verified.expires_at_s)
        return verified.caller

    def _authenticate(self, context: grpc.aio.ServicerContext) -> CallerConfig:
        if self._by_cert:  # reading the auth context costs a dict per call: only if it can match
            for name in peer_names_from_auth_context(context.auth_context()):
                if name in self._by_cert:
                    return self._by_cert[name]
        metadata = dict(context.invocation_metadata() or ())
        token = bearer_token(_text(metadata.get("authorization")))
        if token is not None:
            if not self._verifier.accepts_tokens:
                raise Unauthenticated("bearer tokens are not accepted by this gateway")
            name = self._verified(token)
            caller = self._by_name.get(name)
            if caller is None:
                raise Unauthenticated(f"token subject {name!r} is not a known caller")
            return caller
        if self._config.allow_anonymous:
            return ANONYMOUS
        raise Unauthenticated("no client certificate or bearer token")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
