"""A file-system model registry: versioned directories, each with `model.onnx`,
`manifest.json` (version, metrics, feature schema, checksum, training-data fingerprint) and
any attachments (the reliability plot), and a `CURRENT` pointer. Versions are written aside
and renamed into place, and the pointer is replaced atomically, so a reader never sees half a
model. Loading verifies the checksum."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.durable import fsync_dir, write_synced

_VERSION = re.compile(r"^v(\d{4})-([0-9a-f]{8})$")
REQUIRED = ("version", "checksum_sha256", "feature_schema", "metrics", "training_data_sha256")
_ATTACHMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RESERVED = ("model.onnx", "manifest.json")


class RegistryError(Exception):
    """A model is missing, unreadable or does not match its manifest."""


@dataclass(frozen=True)
class LoadedModel:
    version: str
    manifest: dict[str, Any]
    onnx: bytes


class ModelRegistry:
    def __init__(self, root: Path, name: str = "ctr") -> None:
        self.root = root / name

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if _VERSION.match(p.name))

    def current(self) -> str | None:
        pointer = self.root / "CURRENT"
        return pointer.read_text().strip() if pointer.exists() else None

    def publish(
        self,
        onnx: bytes,
        manifest: dict[str, Any],
        make_current: bool = True,
        attachments: Mapping[str, bytes] | None = None,
    ) -> str:
        """Store a new version; returns its name ("v0003-1a2b3c4d"). `attachments` are files
        published beside the model (e.g. its reliability plot), listed in the manifest with
        their checksums."""
        attachments = dict(attachments or {})
        bad = [n for n in attachments if not _ATTACHMENT.match(n) or n in RESERVED]
        if bad:
            raise RegistryError(f"attachment names {bad} are not plain file names")
        checksum = hashlib.sha256(onnx).hexdigest()
        existing = self.versions()
        number = int(existing[-1][1:5]) + 1 if existing else 1
        version = f"v{number:04d}-{checksum[:8]}"
        full = {**manifest, "version": version, "checksum_sha256": checksum}
        if attachments:
            full["attachments"] = {
                name: hashlib.sha256(body).hexdigest() for name, body in sorted(attachments.items())
            }
        missing = [k for k in REQUIRED if k not in full]
        if missing:
            raise RegistryError(f"manifest lacks {', '.join(missing)}")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        write_synced(staging / "model.onnx", onnx)
        for name, body in attachments.items():
            write_synced(staging / name, body)
        write_synced(staging / "manifest.json", json.dumps(full, indent=2, sort_keys=True).encode())
        os.rename(staging, self.root / version)
        fsync_dir(self.root)
        if make_current:
            self.set_current(version)
        return version

    def set_current(self, version: str) -> None:
        if version not in self.versions():
            raise RegistryError(f"no version {version} in {self.root}")
        tmp = self.root / ".CURRENT.tmp"
        write_synced(tmp, version.encode())
        os.replace(tmp, self.root / "CURRENT")
        fsync_dir(self.root)

    def load(self, version: str | None = None) -> LoadedModel:
        """A version (default: CURRENT) whose bytes match its manifest's checksum."""
        version = version or self.current()
        if version is None:
            raise RegistryError(f"no current model in {self.root}")
        directory = self.root / version
        try:
            manifest = json.loads((directory / "manifest.json").read_text())
            onnx = (directory / "model.onnx").read_bytes()
        except (OSError, ValueError) as exc:
            raise RegistryError(f"model {version} is unreadable: {exc}") from exc
        missing = [k for k in REQUIRED if k not in manifest]
        if missing:
            raise RegistryError(f"model {version}: manifest lacks {', '.join(missing)}")
        actual = hashlib.sha256(onnx).hexdigest()
        if actual != manifest["checksum_sha256"]:
            raise RegistryError(
                f"model {version}: checksum mismatch (manifest {manifest['checksum_sha256'][:12]}"
                f"..., file {actual[:12]}...)"
            )
        return LoadedModel(version, manifest, onnx)

    # --- rollout: which versions serve, and how traffic splits between them -------------------

    def rollout(self) -> Rollout:
        """The serving plan: CURRENT as stable, plus the canary named in ROLLOUT.json, if any."""
        stable = self.current()
        if stable is None:
            raise RegistryError(f"no current model in {self.root}")
        path = self.root / "ROLLOUT.json"
        if not path.exists():
            return Rollout(stable=stable)
        try:
            raw = json.loads(path.read_text())
            canary, weight = str(raw["canary"]), float(raw["canary_weight"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"{path} is unreadable: {exc}") from exc
        return Rollout(stable=stable, canary=canary, canary_weight=weight)

    def set_canary(self, version: str, weight: float) -> None:
        """Send `weight` (0 < w < 1) of traffic to `version`, the rest to CURRENT."""
        if version not in self.versions():
            raise RegistryError(f"no version {version} in {self.root}")
        if not 0.0 < weight < 1.0:
            raise RegistryError(f"canary weight must be between 0 and 1 exclusive, got {weight}")
        if version == self.current():
            raise RegistryError(f"{version} is already CURRENT; a canary must be another version")
        body = json.dumps({"canary": version, "canary_weight": weight}).encode()
        tmp = self.root / ".ROLLOUT.tmp"
        write_synced(tmp, body)
        os.replace(tmp, self.root / "ROLLOUT.json")
        fsync_dir(self.root)

    def clear_canary(self) -> None:
        path = self.root / "ROLLOUT.json"
        if path.exists():
            path.unlink()
            fsync_dir(self.root)

    def promote_canary(self) -> str:
        """Make the canary CURRENT and end the split; returns the promoted version."""
        plan = self.rollout()
        if plan.canary is None:
            raise RegistryError("there is no canary to promote")
        self.set_current(plan.canary)
        self.clear_canary()
        return plan.canary


@dataclass(frozen=True)
class Rollout:
    stable: str
    canary: str | None = None
    canary_weight: float = 0.0
