"""Read the current feature snapshot without Spark (pyarrow only): what the ranking service
calls.

Layout, written by `ray_jobs/sync/export_features.py` (see `ray_jobs/sync/publish.py`):

    <root>/CURRENT                       the version name, replaced atomically
    <root>/snapshots/<version>/manifest.json
    <root>/snapshots/<version>/part-*.parquet   exactly the files the manifest lists

A snapshot directory is complete before CURRENT names it, so following CURRENT never sees
half a snapshot. The reader still refuses anything inconsistent (a listed file missing or
altered, a column the manifest does not declare) rather than serve partial features.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

CURRENT = "CURRENT"
SNAPSHOTS = "snapshots"
MANIFEST = "manifest.json"
KEY = "pseudonymous_user_id"
VERSION = re.compile(r"^v[0-9]{8}T[0-9]{6}[0-9]{6}Z(-[0-9a-f]{6})?$")
FILE_NAME = re.compile(r"^[A-Za-z0-9._=-]+\.parquet$")


class SnapshotError(Exception):
    """The snapshot is incomplete or inconsistent; do not serve it."""


@dataclass(frozen=True)
class FeatureSnapshot:
    """One published snapshot, indexed by pseudonymous user id."""

    version: str
    manifest: dict[str, Any]
    table: pa.Table
    _index: dict[str, int] = field(repr=False)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def lookup(self, pseudonymous_user_id: str) -> dict[str, object] | None:
        """The user's feature row (every column, the key included), or None if unknown."""
        row = self._index.get(pseudonymous_user_id)
        if row is None:
            return None
        record: dict[str, object] = self.table.slice(row, 1).to_pylist()[0]
        return record


def current_version(root: Path) -> str | None:
    """The version CURRENT names, or None when nothing was published yet."""
    try:
        text = (root / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    if not VERSION.match(text):
        raise SnapshotError(f"{root / CURRENT}: {text!r} is not a snapshot version")
    return text


def load_current(root: Path) -> FeatureSnapshot | None:
    """Follow CURRENT and load that snapshot; None when nothing was published yet."""
    version = current_version(root)
    return None if version is None else load_version(root, version)


def load_version(root: Path, version: str) -> FeatureSnapshot:
    """Load one snapshot by version (e.g. to roll back); raises SnapshotError if unsound."""
    if not VERSION.match(version):
        raise SnapshotError(f"{version!r} is not a snapshot version")
    directory = root / SNAPSHOTS / version
    manifest = _manifest(directory, version)
    tables = [_read_file(directory, name, manifest) for name in manifest["files"]]
    declared = pa.schema([(c["name"], _arrow_type(c["type"])) for c in manifest["columns"]])
    table = pa.concat_tables(tables) if tables else declared.empty_table()
    if table.num_rows != manifest["row_count"]:
        raise SnapshotError(
            f"{version}: {table.num_rows} rows in the files, manifest says {manifest['row_count']}"
        )
    keys = table.column(KEY).to_pylist()
    index = {key: i for i, key in enumerate(keys)}
    if len(index) != len(keys):
        raise SnapshotError(f"{version}: {KEY} is not unique")
    return FeatureSnapshot(version, manifest, table, index)


def _manifest(directory: Path, version: str) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        raise SnapshotError(f"{version}: no {MANIFEST}") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{version}: {MANIFEST} is not JSON: {exc}") from None
    if manifest.get("version") != version:
        raise SnapshotError(f"{version}: manifest names version {manifest.get('version')!r}")
    names = [c.get("name") for c in manifest.get("columns", [])]
    if KEY not in names:
        raise SnapshotError(f"{version}: manifest declares no {KEY} column")
    for name in manifest.get("files", []):
        if not isinstance(name, str) or not FILE_NAME.match(name):
            raise SnapshotError(f"{version}: manifest lists an unsafe file name {name!r}")
    return manifest


def _read_file(directory: Path, name: str, manifest: dict[str, Any]) -> pa.Table:
    path = directory / name
    if not path.is_file():
        raise SnapshotError(f"{manifest['version']}: listed file {name} is missing")
    expected = manifest.get("sha256", {}).get(name)
    if expected is not None and _sha256(path) != expected:
        raise SnapshotError(f"{manifest['version']}: {name} does not match its checksum")
    table = pq.ParquetFile(path).read()
    declared = [(c["name"], c["type"]) for c in manifest["columns"]]
    actual = [(f.name, str(f.type)) for f in table.schema]
    if sorted(actual) != sorted((n, str(_arrow_type(t))) for n, t in declared):
        raise SnapshotError(f"{manifest['version']}: {name} has columns {actual}, not {declared}")
    return table.select([n for n, _ in declared])


_TYPES = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "long": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
}


def _arrow_type(name: str) -> pa.DataType:
    try:
        return _TYPES[name]
    except KeyError:
        raise SnapshotError(f"unknown column type {name!r} in the manifest") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
