"""Publish a feature snapshot atomically, keep old versions for rollback (local files).

    <root>/snapshots/.staging-<uuid>/   Spark writes here (hidden: never a version)
    <root>/snapshots/<version>/         renamed into place once complete, with manifest.json
    <root>/CURRENT                      then replaced: temp file + fsync + rename + fsync dir

A reader that follows CURRENT (services/public/features/snapshot.py) therefore sees either
the old or the new snapshot, never a mix. A crash before the CURRENT rename leaves a complete
but unreferenced version (or a staging directory), which the next publish prunes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from services.core.durable import fsync_dir, write_synced
from services.public.features.snapshot import CURRENT, MANIFEST, SNAPSHOTS, VERSION

STAGING_PREFIX = ".staging-"
STALE_STAGING_S = 3600


def new_version(now_us: int) -> str:
    """A version name that sorts by creation time: vYYYYMMDDTHHMMSSffffffZ-xxxxxx."""
    seconds, micros = divmod(now_us, 1_000_000)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds))
    return f"v{stamp}{micros:06d}Z-{uuid.uuid4().hex[:6]}"


def staging_dir(root: Path) -> Path:
    """A fresh hidden directory for Spark to write the next snapshot into (not created:
    Spark creates it)."""
    (root / SNAPSHOTS).mkdir(parents=True, exist_ok=True)
    return root / SNAPSHOTS / f"{STAGING_PREFIX}{uuid.uuid4().hex}"


def part_files(directory: Path) -> list[str]:
    """The parquet files Spark wrote (its _SUCCESS marker and .crc side files are not data)."""
    return sorted(p.name for p in directory.iterdir() if p.suffix == ".parquet")


def finish(
    root: Path,
    staging: Path,
    version: str,
    columns: list[dict[str, str]],
    extra: dict[str, Any],
    keep: int,
) -> dict[str, Any]:
    """Write the manifest into `staging`, rename it to the version, point CURRENT at it and
    prune old versions. Returns the manifest."""
    if not VERSION.match(version):
        raise ValueError(f"{version!r} is not a snapshot version")
    for leftover in staging.iterdir():  # the snapshot holds the manifest and its files only
        if leftover.suffix != ".parquet":
            leftover.unlink()
    files = part_files(staging)
    manifest: dict[str, Any] = {
        "version": version,
        "created_us": time.time_ns() // 1000,
        "row_count": sum(pq.ParquetFile(staging / f).metadata.num_rows for f in files),
        "columns": columns,
        "files": files,
        "sha256": {f: _sha256_synced(staging / f) for f in files},
        **extra,
    }
    write_synced(staging / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    fsync_dir(staging)
    final = root / SNAPSHOTS / version
    os.rename(staging, final)
    fsync_dir(root / SNAPSHOTS)
    point_current(root, version)
    prune(root, keep)
    return manifest


def point_current(root: Path, version: str) -> None:
    """Atomically make `version` the current snapshot."""
    if not (root / SNAPSHOTS / version / MANIFEST).is_file():
        raise FileNotFoundError(f"no complete snapshot {version} under {root / SNAPSHOTS}")
    temp = root / f".{CURRENT}.{uuid.uuid4().hex}"
    write_synced(temp, (version + "\n").encode())
    os.rename(temp, root / CURRENT)
    fsync_dir(root)


def versions(root: Path) -> list[str]:
    """Published versions, oldest first."""
    directory = root / SNAPSHOTS
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if VERSION.match(p.name))


def rollback(root: Path) -> str:
    """Point CURRENT at the version before the current one; returns it."""
    current = (root / CURRENT).read_text().strip()
    older = [v for v in versions(root) if v < current]
    if not older:
        raise FileNotFoundError(f"no version older than {current} to roll back to")
    point_current(root, older[-1])
    return older[-1]


def prune(root: Path, keep: int, now_s: float | None = None) -> list[str]:
    """Delete all but the newest `keep` versions (never the current one or the one before
    it) and staging directories abandoned for an hour. Returns what was removed."""
    now_s = time.time() if now_s is None else now_s
    current = (root / CURRENT).read_text().strip() if (root / CURRENT).exists() else None
    published = versions(root)
    protected = set(published[-keep:])
    if current in published:
        at = published.index(current)
        protected.update(published[max(0, at - 1) : at + 1])
    removed = [v for v in published if v not in protected]
    for version in removed:
        shutil.rmtree(root / SNAPSHOTS / version)
    for staging in (root / SNAPSHOTS).glob(f"{STAGING_PREFIX}*"):
        if now_s - staging.stat().st_mtime > STALE_STAGING_S:
            shutil.rmtree(staging)
            removed.append(staging.name)
    return removed


def _sha256_synced(path: Path) -> str:
    """Checksum a part file and fsync it (Spark's local writer does not)."""
    digest = hashlib.sha256()
    with open(path, "rb+") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
        os.fsync(handle.fileno())
    return digest.hexdigest()
