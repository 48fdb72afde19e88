"""The gateway's token verification keys: a JWKS file of public keys (RFC 7517), by `kid`."""

from __future__ import annotations

import json
from pathlib import Path

import jwt

# Asymmetric algorithms a JWKS key may name, by the key type (and curve) it needs.
PUBLIC_KEY_ALGORITHMS: dict[tuple[object, object], str] = {
    ("EC", "P-256"): "ES256",
    ("OKP", "Ed25519"): "EdDSA",
}
# JWK members that hold private key material: a JWKS for verification must carry none.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


class KeySetError(ValueError):
    """The JWKS file cannot serve as the gateway's verification keys; the message says why."""


def load_jwks(path: Path) -> dict[str, jwt.PyJWK]:
    """Public keys by `kid` from a JWKS file: each key needs a unique `kid`, a supported
    type (EC P-256 for ES256, OKP Ed25519 for EdDSA) and no private members."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KeySetError(f"jwks {path}: cannot read it as JSON ({exc})") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise KeySetError(f'jwks {path}: expected {{"keys": [...]}} with at least one key')
    by_kid: dict[str, jwt.PyJWK] = {}
    for i, jwk in enumerate(keys):
        if not isinstance(jwk, dict):
            raise KeySetError(f"jwks {path}: key {i} is not an object")
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            raise KeySetError(f"jwks {path}: key {i} has no kid")
        if kid in by_kid:
            raise KeySetError(f"jwks {path}: kid {kid!r} appears twice")
        if _PRIVATE_MEMBERS & jwk.keys():
            raise KeySetError(
                f"jwks {path}: key {kid!r} holds private or secret material; the gateway "
                "verifies with public keys only"
            )
        algorithm = PUBLIC_KEY_ALGORITHMS.get((jwk.get("kty"), jwk.get("crv")))
        if algorithm is None or jwk.get("alg", algorithm) != algorithm:
            raise KeySetError(
                f"jwks {path}: key {kid!r} is {jwk.get('kty')}/{jwk.get('crv')} "
                f"alg {jwk.get('alg')}; supported: EC P-256 (ES256), OKP Ed25519 (EdDSA)"
            )
        try:
            by_kid[kid] = jwt.PyJWK({**jwk, "alg": algorithm})
        except jwt.PyJWTError as exc:
            raise KeySetError(f"jwks {path}: key {kid!r} is not a valid key ({exc})") from None
    return by_kid
