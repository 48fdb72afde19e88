"""The file sink's `_spark_metadata` log, read and patched without Spark.

A Structured Streaming file sink commits each batch by writing `_spark_metadata/<batch>`
(one JSON entry per part file, after a "v1" line); every `compactInterval` batches it writes
`<batch>.compact` holding all entries so far. Files in the directory that no entry names
are debris of killed batches: never read the sink by listing its directory.

`live_files` is the pyarrow-side reader. `patch_entries` is what the erasure uses after it
rewrote part files in place: the log records each file's size, and Spark's parquet reader
trusts it, so the entries must carry the new sizes.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

from services.core.durable import fsync_dir, write_synced

METADATA = "_spark_metadata"
VERSION_LINE = "v1"


def log_files(sink: Path) -> list[Path]:
    """The log files that define the sink now: the latest compact file and the batches after
    it, in batch order."""
    directory = sink / METADATA
    if not directory.is_dir():
        return []
    batches: dict[int, Path] = {}
    compact = -1
    for path in directory.iterdir():
        stem, _, suffix = path.name.partition(".")
        if not stem.isdigit() or suffix not in ("", "compact"):
            continue
        batches[int(stem)] = path
        if suffix == "compact":
            compact = max(compact, int(stem))
    return [batches[b] for b in sorted(batches) if b >= compact]


def parse_entries(text: str) -> list[dict[str, object]]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != VERSION_LINE:
        raise ValueError(f"sink log: unsupported version line {lines[:1]!r}")
    return [json.loads(line) for line in lines[1:] if line.strip()]


def live_files(sink: Path) -> list[Path]:
    """The part files the sink has committed (adds minus deletes), in commit order."""
    live: dict[str, None] = {}
    for log in log_files(sink):
        for entry in parse_entries(log.read_text()):
            path = str(entry["path"])
            if entry.get("action") == "delete":
                live.pop(path, None)
            else:
                live[path] = None
    return [Path(unquote(urlparse(p).path)) for p in live]


def patch_entries(text: str, sizes: dict[str, tuple[int, int]]) -> str | None:
    """The log text with each entry whose path (a local path) is in `sizes` given the new
    (size, modification time ms), other entries kept byte for byte; None when no entry
    names one of those files (pure)."""
    out = [VERSION_LINE]
    hits = 0
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        entry = json.loads(line)
        local = unquote(urlparse(str(entry["path"])).path)
        if local in sizes:
            entry["size"], entry["modificationTime"] = sizes[local]
            line = json.dumps(entry, separators=(",", ":"))
            hits += 1
        out.append(line)
    return "\n".join(out) if hits else None


def update_sizes(sink: Path, files: list[Path]) -> int:
    """Record the current size and mtime of `files` in every log file that names them.
    Each log file is replaced atomically and its Hadoop checksum side file removed (it
    would no longer match). Returns how many log files changed."""
    sizes = {str(f): (f.stat().st_size, f.stat().st_mtime_ns // 1_000_000) for f in files}
    changed = 0
    for log in log_files(sink):
        patched = patch_entries(log.read_text(), sizes)
        if patched is None:
            continue
        replace_file(log, patched.encode())
        changed += 1
    return changed


def replace_file(path: Path, data: bytes) -> None:
    """Atomically replace `path` (temp + fsync + rename + fsync dir), its Hadoop checksum
    side file `.<name>.crc` removed first: a crash in between leaves the old text without
    a checksum (read unchecked), never the new text with the old checksum (a read error)."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    write_synced(temp, data)
    path.with_name(f".{path.name}.crc").unlink(missing_ok=True)
    os.rename(temp, path)
    fsync_dir(path.parent)
