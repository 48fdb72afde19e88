"""terraform/ read as HCL (python-hcl2), for what no provider is needed to check -- the only
check the modules using the helm and kubernetes providers get on this machine: every
variable typed and described, every module call giving each required input and only inputs
the module declares, every output described; and envs/hybrid's chart values are what
`isthmus render helm-values` writes for the embedded topology."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 (scripts/setup installs it)")

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2] / "terraform"
MODULE_DIRS = sorted(p for p in (ROOT / "modules").iterdir() if p.is_dir())
ENV_DIRS = sorted(p for p in (ROOT / "envs").iterdir() if p.is_dir())


def blocks(folder: Path, kind: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as handle:
            for block in hcl2.load(handle).get(kind, []):
                out.update(block)
    return out


def test_there_are_the_modules_and_the_hybrid_env() -> None:
    assert {p.name for p in MODULE_DIRS} >= {
        "public_cloud",
        "private_cloud",
        "isthmus_release",
        "chaos_drills",
        "peak_season",
    }
    assert "hybrid" in {p.name for p in ENV_DIRS}


@pytest.mark.parametrize("folder", MODULE_DIRS + ENV_DIRS, ids=lambda p: p.name)
def test_layout_variables_and_outputs(folder: Path) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (folder / name).exists(), f"{folder.name}/{name}"
    for name, spec in blocks(folder, "variable").items():
        assert spec.get("type"), f"{folder.name}: variable {name} has no type"
        assert len(spec.get("description", "")) > 10, f"{folder.name}: variable {name} undescribed"
    for name, spec in blocks(folder, "output").items():
        assert spec.get("description"), f"{folder.name}: output {name} undescribed"


@pytest.mark.parametrize("folder", MODULE_DIRS + ENV_DIRS, ids=lambda p: p.name)
def test_every_module_call_is_wired(folder: Path) -> None:
    meta = {"source", "providers", "for_each", "count", "depends_on", "version"}
    for name, call in blocks(folder, "module").items():
        target = (folder / call["source"]).resolve()
        declared = blocks(target, "variable")
        given = set(call) - meta
        unknown = sorted(given - set(declared))
        assert not unknown, f"{folder.name}: module {name} passes unknown inputs {unknown}"
        required = sorted(v for v, spec in declared.items() if "default" not in spec)
        missing = sorted(set(required) - given)
        assert not missing, f"{folder.name}: module {name} misses required inputs {missing}"


def test_hybrid_values_are_the_rendered_topology() -> None:
    from services.contract.descriptors import load_descriptor_set, method_table
    from services.deploy.helm_values import zone_values
    from services.topology import load_topology

    table = method_table(load_descriptor_set())
    for zone in ("private", "public-a", "public-b"):
        committed = yaml.safe_load(
            (ROOT / "envs" / "hybrid" / "values" / f"{zone}.yaml").read_text()
        )
        assert committed == zone_values(load_topology(), zone, table), (
            f"envs/hybrid/values/{zone}.yaml is stale: isthmus render helm-values --zone {zone}"
        )
