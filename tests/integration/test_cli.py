"""The `isthmus` console script as a user meets it (installed entry point, real processes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ISTHMUS = shutil.which("isthmus") or str(Path(__file__).resolve().parents[2] / ".venv/bin/isthmus")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ISTHMUS, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("protos", "contract", "plan", "up", "down", "demo", "gateway", "serve"):
        assert f"    {command} " in result.stdout


def test_down_without_up_has_nothing_to_stop(tmp_path: Path) -> None:
    result = run("down", "--run-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "nothing to stop" in result.stdout


def test_demo_without_up_says_so_without_a_traceback(tmp_path: Path) -> None:
    result = run("demo", "--run-dir", str(tmp_path), "--report-dir", str(tmp_path / "r"))
    assert result.returncode == 1
    assert "the platform is not up; run `isthmus up` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_contract_lists_every_rpc() -> None:
    result = run("contract")
    assert result.returncode == 0, result.stderr
    assert "/isthmus.orders.v1.OrderService/PlaceOrder" in result.stdout
    assert result.stdout.count(" SENSITIVE ") == 11
    assert result.stdout.count(" PUBLIC ") == 2


def test_plan_rejects_a_bad_topology_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x1\ngateway: {listen: {host: 127.0.0.1, port: 1}}\nzones: []\n")
    result = run("plan", "--topology", str(bad))
    assert result.returncode == 1
    assert f"{bad}: zones: List should have at least 1 item" in result.stderr


def test_plan_rejects_a_sensitive_service_in_a_public_zone(tmp_path: Path) -> None:
    text = (
        "name: leak\n"
        "gateway: {listen: {host: 127.0.0.1, port: 1}}\n"
        "zones:\n"
        "  - {name: private, kind: private}\n"
        "  - name: public-a\n"
        "    kind: public\n"
        "    services: [{name: orders, kind: orders, endpoints: [{host: 127.0.0.1, port: 2}]}]\n"
    )
    path = tmp_path / "leak.yaml"
    path.write_text(text)
    result = run("plan", "--topology", str(path))
    assert result.returncode == 1
    assert "VIOLATION placement: orders: serves non-PUBLIC RPCs" in result.stderr


def test_protos_check_passes_on_the_committed_tree() -> None:
    result = run("protos", "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_chaos_run_help_names_every_protection_a_drill_can_switch_off() -> None:
    from chaos.edits import PROTECTIONS

    result = run("chaos", "run", "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    text = "".join(result.stdout.split())  # argparse wraps lines, also at hyphens
    for name, protection in PROTECTIONS.items():
        assert "".join(f"{name}: {protection.what}".split()) in text
