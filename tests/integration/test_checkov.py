"""checkov (in its own virtualenv, `.venv-checkov`, which scripts/setup creates) on the chart
as rendered for every ci/*-values.yaml: 0 failed checks, and each check skipped carries its
reason (templates/_helpers.tpl, `isthmus.checkovSkips`). A container made privileged is
caught, so the scan is not vacuous."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helm_chart import CHART, NAMESPACES, ci_values, render

pytest.importorskip("helm_python", reason="helm-python-sdk (scripts/setup installs it)")
pytestmark = pytest.mark.integration
CHECKOV = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"


def scan(folder: Path, framework: str = "kubernetes") -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.skip(f"{CHECKOV} is missing: run scripts/setup (it installs checkov there)")
    done = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(folder),
            "--framework",
            framework,
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    result = json.loads(done.stdout)
    return result[0] if isinstance(result, list) else result


def render_all(folder: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((CHART / "ci").glob("*-values.yaml")):
        kind, values = ci_values(path)
        rendered = render(values, NAMESPACES[kind])
        (folder / f"{path.stem}.yaml").write_text(yaml.safe_dump_all(rendered, sort_keys=False))
        docs += rendered
    return docs


def test_checkov_finds_nothing_and_every_skip_has_a_reason(tmp_path: Path) -> None:
    docs = render_all(tmp_path)
    result = scan(tmp_path)
    summary = result["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= len({(d["kind"], d["metadata"]["name"]) for d in docs})
    failed = [(c["check_id"], c["resource"]) for c in result["results"]["failed_checks"]]
    assert failed == [], failed
    assert summary["passed"] > 0
    for skipped in result["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, (skipped["check_id"], skipped["resource"], reason)
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    by_check = Counter(s["check_id"] for s in result["results"]["skipped_checks"])
    print(  # the README quotes these numbers (pytest -s shows them)
        f"checkov: {summary['resource_count']} resources over {len(docs)} objects, "
        f"{summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} "
        f"skipped ({dict(sorted(by_check.items()))})"
    )


def test_a_privileged_container_is_caught(tmp_path: Path) -> None:
    _, values = ci_values(CHART / "ci" / "private-values.yaml")
    docs = render(values, NAMESPACES["private"])
    gateway = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("gateway")
    )
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["privileged"] = True
    container["securityContext"]["allowPrivilegeEscalation"] = True
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway, sort_keys=False))
    failed = {c["check_id"] for c in scan(tmp_path)["results"]["failed_checks"]}
    assert {"CKV_K8S_16", "CKV_K8S_20"} <= failed


def test_checkov_on_terraform_finds_nothing_and_every_skip_has_a_reason() -> None:
    """terraform/ (every module and envs/hybrid): 0 failed; skips are `checkov:skip` comments
    with their reasons in the HCL."""
    result = scan(Path(__file__).resolve().parents[2] / "terraform", "terraform")
    summary = result["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 20
    failed = [(c["check_id"], c["resource"]) for c in result["results"]["failed_checks"]]
    assert failed == [], failed
    for skipped in result["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, (skipped["check_id"], skipped["resource"], reason)
