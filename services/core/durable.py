"""Durable file writes: data fsynced before a rename makes it visible, and the directory
fsynced after, so a crash never exposes half a file nor loses an acknowledged one."""

from __future__ import annotations

import os
from pathlib import Path


def write_synced(path: Path, data: bytes) -> None:
    """Write `data` to `path` and fsync it (the caller renames it into place)."""
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def fsync_dir(path: Path) -> None:
    """Persist a directory's entries (a rename or new file in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
