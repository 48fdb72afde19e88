"""The Helm chart as the tests render it: each zone's values as `isthmus render helm-values`
writes them, overlays merged on top, and Helm's own Go SDK (helm-python-sdk) rendering.
Callers skip when the SDK is missing (`pytest.importorskip("helm_python")`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from services.contract.descriptors import load_descriptor_set, method_table
from services.deploy.helm_values import zone_values
from services.topology import load_topology

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "isthmus"
NAMESPACES = {"private": "isthmus-private", "public": "isthmus-public-a"}
ZONES = {"private": "private", "public": "public-a"}


def zone_base(kind: str) -> dict[str, Any]:
    """The values `isthmus render helm-values` writes for the private or first public zone."""
    table = method_table(load_descriptor_set())
    return zone_values(load_topology(), ZONES[kind], table)


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`overlay` on `base`, maps merged key by key as Helm merges -f files."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def render(values: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """Every object the chart renders with `values` (release `isthmus`), NOTES.txt left out."""
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values, name="isthmus", namespace=namespace)
    docs = []
    for name, text in sorted(out.items()):
        if name.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def ci_values(path: Path) -> tuple[str, dict[str, Any]]:
    """A ci/*-values.yaml overlay on its zone's rendered values: (zone kind, values)."""
    kind = path.name.split("-", 1)[0]
    return kind, merged(zone_base(kind), yaml.safe_load(path.read_text()) or {})
