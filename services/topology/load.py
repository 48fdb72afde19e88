"""Read a topology file (YAML) into the validated model, with errors that name file and key."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from services.topology.model import Topology

DEFAULT_TOPOLOGY = "local.yaml"


class TopologyError(ValueError):
    """The topology file is missing, not YAML, or not a valid topology."""


def load_topology(path: Path | None = None, embedded: str = DEFAULT_TOPOLOGY) -> Topology:
    """Load `path`, or the embedded topology `embedded` (the local default) when None."""
    if path is None:
        source = f"<embedded {embedded}>"
        text = (resources.files("services.topology") / embedded).read_text()
    else:
        source = str(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise TopologyError(f"{source}: cannot read: {exc.strerror}") from exc
    return parse_topology(text, source)


def parse_topology(text: str, source: str = "<string>") -> Topology:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TopologyError(f"{source}: expected a mapping at the top level")
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        raise TopologyError(f"{source}: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    """One line per problem: "zones.1.services.0.endpoints: ..."; never echoes input values
    beyond what pydantic's message itself names."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
