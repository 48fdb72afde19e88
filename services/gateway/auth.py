"""Caller authentication, authorization and rate limits.

Tokens are JWTs (compact JWS) checked with PyJWT: HS256 with the gateway's own key (the local
default), or ES256 / EdDSA with public keys from a JWKS file, picked by the token's `kid`, so a
production gateway verifies tokens without holding a key that can mint them; rotating a key is
adding it to the file, reloading, and later dropping the old one. Claims: `sub` (the caller
name) and `exp` are required; `nbf` and `iat` are honoured when present; `iss` and `aud` are
required and checked when the gateway is configured with them. The time claims are checked
here against an injected clock (the library checks signature, algorithm, issuer, audience and
shape). Every refusal says why without echoing the token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jwt

from services.core.errors import Unauthenticated
from services.gateway.config import AuthConfig, CallerConfig
from services.gateway.jwks import PUBLIC_KEY_ALGORITHMS, load_jwks

MAX_TOKEN_BYTES = 4096
HMAC_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Verified:
    caller: str
    expires_at_s: float


@dataclass(frozen=True)
class TokenVerifier:
    """What the gateway accepts: HS256 with `hmac_key`, ES256/EdDSA with `public_keys`."""

    hmac_key: bytes | None = None
    public_keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    issuer: str | None = None
    audience: str | None = None
    leeway_s: float = 0.0

    @classmethod
    def from_config(cls, config: AuthConfig) -> TokenVerifier:
        """Reads the key and the JWKS file now (a reload reads them again)."""
        return cls(
            hmac_key=config.token_key.read() if config.token_key else None,
            public_keys=load_jwks(config.jwks_file) if config.jwks_file else {},
            issuer=config.issuer,
            audience=config.audience,
            leeway_s=config.leeway_s,
        )

    @property
    def accepts_tokens(self) -> bool:
        return self.hmac_key is not None or bool(self.public_keys)

    def verify(self, token: str, now_s: float) -> Verified:
        """The caller a valid token names; Unauthenticated with the reason otherwise."""
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthenticated("bearer token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("bearer token is malformed") from None
        key = self._key_for(header)
        required = ["exp", "sub"]
        required += ["iss"] if self.issuer is not None else []
        required += ["aud"] if self.audience is not None else []
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(header.get("alg"))],
                issuer=self.issuer,
                audience=self.audience,
                options={
                    "require": required,
                    # Time claims are ours to check, against the injected clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": self.audience is not None,
                    "verify_iss": self.issuer is not None,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"bearer token {_reason(exc)}") from None
        return Verified(_subject(claims), _time_claims(claims, now_s, self.leeway_s))

    def _key_for(self, header: dict[str, Any]) -> Any:
        algorithm = header.get("alg")
        if algorithm == HMAC_ALGORITHM:
            if self.hmac_key is None:
                raise Unauthenticated("bearer token algorithm HS256 is not accepted here")
            return self.hmac_key
        if algorithm not in PUBLIC_KEY_ALGORITHMS.values() or not self.public_keys:
            accepted = ([HMAC_ALGORITHM] if self.hmac_key is not None else []) + (
                sorted(set(PUBLIC_KEY_ALGORITHMS.values())) if self.public_keys else []
            )
            raise Unauthenticated(
                f"bearer token algorithm is not accepted here (accepted: {', '.join(accepted)})"
            )
        kid = header.get("kid")
        jwk = self.public_keys.get(kid) if isinstance(kid, str) else None
        if jwk is None:
            raise Unauthenticated("bearer token key id (kid) is unknown or missing")
        if jwk.algorithm_name != algorithm:
            raise Unauthenticated("bearer token algorithm does not match its key")
        return jwk


def _reason(exc: jwt.PyJWTError) -> str:
    """Why the library refused a token, in words that never hold the token."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"has no {exc.claim} claim"
    reasons: list[tuple[type[jwt.PyJWTError], str]] = [
        (jwt.InvalidSignatureError, "signature is invalid"),
        (jwt.InvalidAudienceError, "audience is not this gateway"),
        (jwt.InvalidIssuerError, "issuer is not trusted"),
        (jwt.InvalidAlgorithmError, "algorithm is not accepted here"),
        (jwt.DecodeError, "is malformed"),
    ]
    return next((text for kind, text in reasons if isinstance(exc, kind)), "is invalid")


def _subject(claims: dict[str, Any]) -> str:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("bearer token has no sub claim")
    return subject


def _time_claims(claims: dict[str, Any], now_s: float, leeway_s: float) -> float:
    """`exp` after checking exp, nbf and iat against `now_s` (numbers only, per RFC 7519)."""
    values = {name: claims.get(name) for name in ("exp", "nbf", "iat")}
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise Unauthenticated(f"bearer token claim {name} is not a number")
    exp = float(values["exp"])  # type: ignore[arg-type]  # required, checked above
    if exp <= now_s - leeway_s:
        raise Unauthenticated("bearer token has expired")
    nbf = values["nbf"]
    if nbf is not None and float(nbf) > now_s + leeway_s:
        raise Unauthenticated("bearer token is not valid yet (nbf)")
    iat = values["iat"]
    if iat is not None and float(iat) > now_s + leeway_s:
        raise Unauthenticated("bearer token was issued in the future (iat)")
    return exp


def issue_token(
    key: bytes,
    caller: str,
    expires_at_s: int,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """An HS256 token for `caller` (local platform, tests, tools)."""
    claims: dict[str, Any] = {"sub": caller, "exp": expires_at_s}
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, key, algorithm=HMAC_ALGORITHM)


def verify_token(token: str, key: bytes, now_s: float) -> str:
    """The caller named by a valid HS256 token under `key` (TokenVerifier for the rest)."""
    return TokenVerifier(hmac_key=key).verify(token, now_s).caller


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def is_allowed(caller: CallerConfig, path: str) -> bool:
    """`path` is "/pkg.Service/Method"; patterns are exact, "/pkg.Service/*" or "*"."""
    service = path.rsplit("/", 1)[0]
    return any(p in ("*", path, f"{service}/*") for p in caller.allow)


@dataclass
class TokenBucket:
    """Refills `rate_per_s` tokens a second up to `burst`; each call takes one."""

    rate_per_s: float
    burst: int
    tokens: float = field(init=False)
    updated_s: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now_s: float) -> bool:
        if self.updated_s is not None:
            elapsed = max(0.0, now_s - self.updated_s)
            self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate_per_s)
        self.updated_s = now_s
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
