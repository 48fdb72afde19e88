"""Environment variables isthmus reads, all in this one module."""

from __future__ import annotations

import os
from pathlib import Path

# Topology file used when a command gets no --topology; unset = the embedded local default.
ENV_TOPOLOGY = "ISTHMUS_TOPOLOGY"


def topology_path_from_env() -> Path | None:
    value = os.environ.get(ENV_TOPOLOGY, "").strip()
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"{ENV_TOPOLOGY}={value} does not name a file")
    return path
