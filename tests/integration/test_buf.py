"""buf (installed by scripts/setup from npm) lints the protos and catches breaking changes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from services.contract.codegen import PROTO_ROOT


@pytest.fixture(scope="module")
def buf(repo_root_module: Path) -> str:
    local = repo_root_module / "tools" / "node_modules" / ".bin" / "buf"
    found = str(local) if local.exists() else shutil.which("buf")
    if found is None:
        pytest.fail("buf is not installed; run scripts/setup")
    return found


@pytest.fixture(scope="module")
def repo_root_module() -> Path:
    return PROTO_ROOT.parent


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_buf_lint_is_clean(buf: str) -> None:
    result = run(buf, "lint", cwd=PROTO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_format_is_clean(buf: str) -> None:
    result = run(buf, "format", "--diff", "--exit-code", cwd=PROTO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_lint_rejects_a_bad_enum(buf: str, tmp_path: Path) -> None:
    root = tmp_path / "protos"
    shutil.copytree(PROTO_ROOT, root)
    ads = root / "isthmus/ads/v1/ads.proto"
    ads.write_text(ads.read_text().replace("AGE_BAND_UNSPECIFIED = 0;", "UNKNOWN_AGE = 0;"))
    result = run(buf, "lint", cwd=root)
    assert result.returncode != 0
    assert "ENUM_VALUE_PREFIX" in result.stdout or "UNKNOWN_AGE" in result.stdout


def test_buf_breaking_flags_a_removed_field(buf: str, tmp_path: Path) -> None:
    root = tmp_path / "protos"
    shutil.copytree(PROTO_ROOT, root)
    orders = root / "isthmus/orders/v1/orders.proto"
    orders.write_text(
        orders.read_text().replace("  string payment_token = 5 [", "  string payment_tokn = 5 [")
    )
    same = run(buf, "breaking", str(PROTO_ROOT), "--against", str(PROTO_ROOT), cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    changed = run(buf, "breaking", str(root), "--against", str(PROTO_ROOT), cwd=tmp_path)
    assert changed.returncode != 0
    assert "payment_token" in changed.stdout
