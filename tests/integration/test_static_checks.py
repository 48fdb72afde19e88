"""ruff (lint + format), mypy --strict and the import contracts (import-linter, declared in
pyproject.toml) hold for the whole tree; CI fails otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_static_check(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def test_the_import_contracts_hold() -> None:
    result = subprocess.run(
        [LINT_IMPORTS], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden", "contract"),
    [
        ("services/gateway/routing.py", "services.private.config", "The gateway imports no"),
        ("services/public/events/validation.py", "services.private.db", "Public-zone code"),
        ("services/core/errors.py", "services.topology.model", "The foundation"),
    ],
)
def test_the_import_contracts_fail_on_a_forbidden_import(
    tmp_path: Path, module: str, forbidden: str, contract: str
) -> None:
    """A copy of the tree with one forbidden import added breaks the contract it crosses."""
    import shutil

    for name in ("services", "ray_jobs", "chaos", "bench"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / module).open("a") as source:
        source.write(f"\nimport {forbidden}  # noqa: E402,F401\n")
    result = subprocess.run(
        [LINT_IMPORTS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stdout[-2000:]
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout[-2000:]
    assert forbidden in broken
