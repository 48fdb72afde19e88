"""Key material of the private zone and what is done with it.

- Identifiers are stored as HMAC-SHA256 under a key that never leaves this zone: a plain hash
  of a phone number is reversible by enumerating all numbers; a keyed one is not.
- Pseudonymous ids for the public zones are a second, independent HMAC of the unified id,
  with a keyed check the doors can verify (services/core/pseudonym.py).
- Personal fields are sealed with AES-256-GCM under a per-person data key (DEK); the DEK is
  stored only wrapped by the master key-encryption key (KEK). Destroying the wrapped DEK makes
  that person's ciphertext undecryptable (crypto-shredding).
All sub-keys are derived with HKDF from the two configured secrets, one label per purpose.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.core import pseudonym

NONCE_BYTES = 12


class UnreadableCiphertext(Exception):
    """Ciphertext failed authentication: wrong key, wrong record, or tampering."""


def _derive(root: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(root)


class Keys:
    """All keyed operations of the private zone. Holds key bytes: never log or repr it."""

    __slots__ = ("_check", "_fingerprint", "_identifier", "_kek", "_pseudonym", "master_key_id")

    def __init__(
        self, master_key: bytes, hmac_key: bytes, pseudonym_check_key: bytes | None = None
    ) -> None:
        """`pseudonym_check_key`: the check key the doors verify pseudonymous ids with (a
        secret of its own); derived from `hmac_key` when not given, in which case only a
        door given that derived key could check more than the shape."""
        self._kek = AESGCM(_derive(master_key, "isthmus/kek/v1"))
        self.master_key_id = hashlib.sha256(_derive(master_key, "isthmus/kek-id/v1")).hexdigest()[
            :16
        ]
        self._identifier = _derive(hmac_key, "isthmus/identifier/v1")
        self._pseudonym = _derive(hmac_key, "isthmus/pseudonym/v1")
        self._fingerprint = _derive(hmac_key, "isthmus/fingerprint/v1")
        self._check = pseudonym_check_key or _derive(hmac_key, "isthmus/pseudonym-check/v1")

    def __repr__(self) -> str:
        return f"Keys(master_key_id={self.master_key_id})"

    def identifier_hash(self, kind: str, normalized: str) -> str:
        """Stable keyed hash of one normalised identifier, namespaced by its kind."""
        message = f"{kind}\x00{normalized}".encode()
        return hmac.new(self._identifier, message, hashlib.sha256).hexdigest()

    def pseudonym(self, unified_id: str) -> str:
        """The id the public zones know a person by; not linkable without this zone's key."""
        return pseudonym.mint(self._pseudonym, self._check, unified_id)

    def fingerprint(self, payload: bytes) -> str:
        """Keyed digest of a request, to compare replays without storing their content."""
        return hmac.new(self._fingerprint, payload, hashlib.sha256).hexdigest()

    def wrap_data_key(self, data_key: bytes, owner: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._kek.encrypt(nonce, data_key, owner.encode())

    def unwrap_data_key(self, wrapped: bytes, owner: str) -> bytes:
        return _open(self._kek, wrapped, owner.encode())


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(data_key: bytes, plaintext: bytes, context: str) -> bytes:
    """Encrypt under a data key; `context` (e.g. "profile:<unified id>") is authenticated, so a
    ciphertext copied onto another record does not decrypt."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext, context.encode())


def unseal(data_key: bytes, blob: bytes, context: str) -> bytes:
    return _open(AESGCM(data_key), blob, context.encode())


def _open(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    try:
        return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError) as exc:
        raise UnreadableCiphertext("ciphertext does not authenticate") from exc
