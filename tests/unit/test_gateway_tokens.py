"""Caller tokens (services/gateway/auth.py, jwks.py): every kind of bad token is refused with
UNAUTHENTICATED and a reason that never echoes the token; ES256 and EdDSA tokens verify with
public keys from a JWKS file, picked by kid, and rotate by reloading the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from services.core.errors import Unauthenticated
from services.gateway.admission import Admission
from services.gateway.auth import MAX_TOKEN_BYTES, TokenVerifier, issue_token
from services.gateway.config import AuthConfig, CallerConfig
from services.gateway.jwks import KeySetError, load_jwks

pytestmark = pytest.mark.unit

NOW = 1_800_000_000
HMAC_KEY = b"h" * 32
ISSUER, AUDIENCE = "https://id.internal.example", "isthmus-gateway"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_OTHER = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def public_jwk(private: Any, kid: str) -> dict[str, Any]:
    if isinstance(private, ec.EllipticCurvePrivateKey):
        jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return {**jwk, "kid": kid}


def write_jwks(path: Path, *keys: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"keys": list(keys)}))
    return path


@pytest.fixture
def verifier(tmp_path: Path) -> TokenVerifier:
    jwks = write_jwks(
        tmp_path / "jwks.json", public_jwk(EC_KEY, "ec-2026"), public_jwk(ED_KEY, "ed-2026")
    )
    return TokenVerifier(
        hmac_key=HMAC_KEY,
        public_keys=load_jwks(jwks),
        issuer=ISSUER,
        audience=AUDIENCE,
    )


def claims(**changes: Any) -> dict[str, Any]:
    base = {"sub": "checkout", "exp": NOW + 60, "iss": ISSUER, "aud": AUDIENCE, "iat": NOW - 5}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(key: Any = EC_KEY, alg: str = "ES256", kid: str | None = "ec-2026", **c: Any) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**c), key, algorithm=alg, headers=headers)


def unsigned() -> str:
    return jwt.encode(claims(), None, algorithm="none")


def pem_public() -> bytes:
    return EC_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_valid_tokens_of_each_accepted_kind(verifier: TokenVerifier) -> None:
    assert verifier.verify(signed(), NOW).caller == "checkout"
    assert verifier.verify(signed(ED_KEY, "EdDSA", "ed-2026"), NOW).caller == "checkout"
    hs = issue_token(HMAC_KEY, "checkout", NOW + 60, issuer=ISSUER, audience=AUDIENCE)
    verified = verifier.verify(hs, NOW)
    assert (verified.caller, verified.expires_at_s) == ("checkout", NOW + 60)


BAD: list[tuple[str, Any, str]] = [
    ("malformed", lambda: "not-a-token", "is malformed"),
    ("two parts", lambda: "e30.e30", "is malformed"),
    ("garbage header", lambda: "!!!.e30.AAAA", "is malformed"),
    ("no alg", lambda: "e30.e30.AAAA", "algorithm is not accepted"),
    ("expired", lambda: signed(exp=NOW - 1), "has expired"),
    ("not yet valid", lambda: signed(nbf=NOW + 60), "not valid yet (nbf)"),
    ("issued in the future", lambda: signed(iat=NOW + 600), "issued in the future"),
    ("exp not a number", lambda: signed(exp=str(NOW + 60)), "exp is not a number"),
    ("wrong key, known kid", lambda: signed(EC_OTHER), "signature is invalid"),
    (
        "wrong hmac key",
        lambda: issue_token(b"x" * 32, "checkout", NOW + 60, ISSUER, AUDIENCE),
        "signature is invalid",
    ),
    ("alg none", unsigned, "algorithm is not accepted"),
    (
        "RS256",
        lambda: signed(rsa.generate_private_key(65537, 2048), "RS256"),
        "algorithm is not accepted",
    ),
    ("unknown kid", lambda: signed(kid="ec-2019"), "key id (kid) is unknown or missing"),
    ("no kid", lambda: signed(kid=None), "key id (kid) is unknown or missing"),
    ("alg does not match key", lambda: signed(ED_KEY, "EdDSA", "ec-2026"), "does not match"),
    ("public key as HMAC secret", lambda: _hs256_with(pem_public()), "signature is invalid"),
    ("wrong issuer", lambda: signed(iss="https://evil.example"), "issuer is not trusted"),
    ("no issuer", lambda: signed(iss=None), "has no iss claim"),
    ("wrong audience", lambda: signed(aud="someone-else"), "audience is not this gateway"),
    ("no audience", lambda: signed(aud=None), "has no aud claim"),
    ("no subject", lambda: signed(sub=None), "has no sub claim"),
    ("no expiry", lambda: signed(exp=None), "has no exp claim"),
    ("oversized", lambda: signed(padding="x" * MAX_TOKEN_BYTES), "too long"),
]


def _hs256_with(secret: bytes) -> str:
    """The classic algorithm confusion: HS256 'signed' with the verifier's public key."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "kid": "ec-2026"}).encode())
    body = b64(json.dumps(claims()).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


@pytest.mark.parametrize(("case", "make", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_tokens_are_refused_with_a_reason_that_never_echoes_them(
    verifier: TokenVerifier, case: str, make: Any, reason: str
) -> None:
    token = make()
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify(token, NOW)
    message = str(refused.value)
    assert reason in message, (case, message)
    for part in token.split("."):
        assert len(part) < 8 or part not in message, case


def test_hs256_is_refused_where_only_public_keys_are_configured(tmp_path: Path) -> None:
    keys = load_jwks(write_jwks(tmp_path / "k.json", public_jwk(EC_KEY, "ec-2026")))
    only_public = TokenVerifier(public_keys=keys, issuer=ISSUER, audience=AUDIENCE)
    hs = issue_token(HMAC_KEY, "checkout", NOW + 60, ISSUER, AUDIENCE)
    with pytest.raises(Unauthenticated, match="HS256 is not accepted"):
        only_public.verify(hs, NOW)
    assert only_public.verify(signed(), NOW).caller == "checkout"


def test_leeway_forgives_small_clock_skew_only(verifier: TokenVerifier) -> None:
    skewed = TokenVerifier(
        hmac_key=HMAC_KEY, public_keys=verifier.public_keys, issuer=ISSUER, audience=AUDIENCE,
        leeway_s=30,
    )  # fmt: skip
    assert skewed.verify(signed(exp=NOW - 10), NOW).caller == "checkout"
    with pytest.raises(Unauthenticated, match="expired"):
        skewed.verify(signed(exp=NOW - 31), NOW)


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ([{**public_jwk(EC_KEY, "a"), "d": "secret"}], "private or secret material"),
        ([public_jwk(EC_KEY, "a"), public_jwk(ED_KEY, "a")], "appears twice"),
        ([{k: v for k, v in public_jwk(EC_KEY, "a").items() if k != "kid"}], "has no kid"),
        ([{"kty": "oct", "k": "c2VjcmV0", "kid": "a"}], "private or secret material"),
        ([{"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "a"}], "supported: EC P-256"),
        ([{**public_jwk(EC_KEY, "a"), "alg": "ES512"}], "supported: EC P-256"),
        ([], "at least one key"),
    ],
)
def test_a_jwks_that_cannot_verify_safely_is_refused(
    tmp_path: Path, keys: list[dict[str, Any]], error: str
) -> None:
    with pytest.raises(KeySetError, match=error):
        load_jwks(write_jwks(tmp_path / "jwks.json", *keys))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(KeySetError, match="cannot read it as JSON"):
        load_jwks(tmp_path / "broken.json")


class FakeContext:
    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def auth_context(self) -> dict[str, Any]:
        return {}


def test_rotation_by_reloading_the_jwks_file(tmp_path: Path) -> None:
    """The config's JWKS is read when the admission is built (start and every reload): a
    new key works after the reload that adds it, an old one stops after the one that drops
    it, and a config naming a bad file does not load."""
    jwks = write_jwks(tmp_path / "jwks.json", public_jwk(EC_KEY, "2026-01"))
    config = AuthConfig(
        jwks_file=jwks,
        issuer=ISSUER,
        audience=AUDIENCE,
        callers=[CallerConfig(name="checkout", allow=["*"])],
    )
    old_token, new_token = signed(kid="2026-01"), signed(ED_KEY, "EdDSA", "2026-07")
    clock = lambda: float(NOW)  # noqa: E731
    before = Admission(config, clock=clock)
    assert before.admit(FakeContext(old_token), "/a.v1.S/M").name == "checkout"
    with pytest.raises(Unauthenticated, match="kid"):
        before.admit(FakeContext(new_token), "/a.v1.S/M")
    write_jwks(jwks, public_jwk(EC_KEY, "2026-01"), public_jwk(ED_KEY, "2026-07"))
    during = Admission(AuthConfig.model_validate(config.model_dump()), clock=clock)
    assert during.admit(FakeContext(new_token), "/a.v1.S/M").name == "checkout"
    assert during.admit(FakeContext(old_token), "/a.v1.S/M").name == "checkout"
    write_jwks(jwks, public_jwk(ED_KEY, "2026-07"))
    after = Admission(AuthConfig.model_validate(config.model_dump()), clock=clock)
    with pytest.raises(Unauthenticated, match="kid"):
        after.admit(FakeContext(old_token), "/a.v1.S/M")
    jwks.write_text(json.dumps({"keys": [{**public_jwk(ED_KEY, "x"), "d": "leak"}]}))
    with pytest.raises(ValueError, match="private or secret material"):
        AuthConfig.model_validate(config.model_dump())
