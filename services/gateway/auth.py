"""Caller authentication, authorization and rate limits (pure).

Tokens are compact JWS (JWT) with HS256: `base64url(header).base64url(claims).base64url(mac)`;
claims `sub` (the caller name) and `exp` (seconds since the epoch) are required.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field

from services.core.errors import Unauthenticated
from services.gateway.config import CallerConfig

_HEADER = {"alg": "HS256", "typ": "JWT"}
MAX_TOKEN_BYTES = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(key: bytes, caller: str, expires_at_s: int) -> str:
    header = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    claims = _b64(json.dumps({"sub": caller, "exp": expires_at_s}, separators=(",", ":")).encode())
    mac = hmac.new(key, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(mac)}"


def verify_token(token: str, key: bytes, now_s: float) -> str:
    """The caller named by a valid, unexpired token; Unauthenticated otherwise (the message
    says why without echoing the token)."""
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated("bearer token is too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated("bearer token is not a JWS compact serialization")
    header_b64, claims_b64, mac_b64 = parts
    expected = hmac.new(key, f"{header_b64}.{claims_b64}".encode(), hashlib.sha256).digest()
    try:
        mac = _unb64(mac_b64)
    except ValueError as exc:
        raise Unauthenticated("bearer token is malformed") from exc
    # Authenticate before parsing anything the sender controls.
    if not hmac.compare_digest(mac, expected):
        raise Unauthenticated("bearer token signature is invalid")
    try:
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(claims_b64))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthenticated("bearer token is malformed") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise Unauthenticated("bearer token must use alg HS256")
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
        raise Unauthenticated("bearer token has no sub claim")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= now_s:
        raise Unauthenticated("bearer token has expired or has no exp claim")
    return str(claims["sub"])


def token_expiry(token: str) -> float:
    """`exp` of a token already verified by `verify_token`."""
    claims = json.loads(_unb64(token.split(".")[1]))
    return float(claims["exp"])


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
