"""The drill report: Markdown verdict table, PNG timeline, and the summary over drills."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pydantic
import pytest

from chaos.report import render_markdown, summary_table, write_report
from chaos.result import DrillResult
from chaos.verdict import overall, probe_row

pytestmark = pytest.mark.unit

RATIO = {"type": "range", "range": [0.99, 1.0]}


def _timeline(fault: tuple[int, int]) -> list[dict[str, Any]]:
    points = []
    for t in range(40):
        hit = fault[0] <= t < fault[1]
        points.append(
            {
                "t_s": float(t),
                "calls": 50,
                "errors": 4 if hit else 0,
                "public_errors": 3 if hit else 0,
                "sensitive_errors": 1 if hit else 0,
                "degraded": 2 if hit else 0,
                # The worst second is outside the fault: "p99 during fault" must not see it.
                "p99_ms": 500.0 if t == 35 else (120.0 if hit else 20.0),
                "replicas": 2 if t < 20 else 3,
            }
        )
    return points


def _result(*, failing: bool, drill: str = "public-nodes-30") -> dict[str, Any]:
    rows = [
        probe_row(
            "success_ratio",
            RATIO,
            {"before": 1.0, "during": 0.97 if failing else 0.995, "after": 1.0},
        ),
        probe_row("p99_ms", [0, 250], {"before": 20.04, "during": 120.0, "after": 20.0}),
        probe_row("recovery_s", [0, 30], {"after": 12.25}, phases=("after",)),
    ]
    return {
        "drill": drill,
        "title": "30% of public nodes killed",
        "verdict": overall(rows).value,
        "started_unix_s": 1_800_000_000.0,
        "duration_s": 40.0,
        "fault_windows": [[10.0, 18.0], [22.0, 25.0]],
        "probes": [row.to_dict() for row in rows],
        "timeline": _timeline((10, 25)),
        "events": [{"t_s": 10.0, "what": "SIGKILL worker node 2 (pid 1234)"}],
        "recovery_s": 12.25,
        "failures": [],
        "rollbacks": [{"name": "restart-node", "status": "succeeded"}],
        "restored": {"ok": True, "differences": []},
        "journal": "var/chaos/public-nodes-30/journal.json",
        "load_rps": 50.0,
    }


def _table_row(markdown: str, probe: str) -> list[str]:
    [line] = [ln for ln in markdown.splitlines() if ln.startswith(f"| {probe} |")]
    # An escaped pipe (\|) belongs to its cell, as Markdown renders it.
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip("|"))]


def test_markdown_verdict_table() -> None:
    markdown = render_markdown(_result(failing=True))
    assert markdown.startswith("# Drill public-nodes-30: deviated\n")
    failing = _table_row(markdown, "success_ratio")
    assert failing == [
        "success_ratio",
        "in [0.99, 1.0]",
        "1.0000",
        "0.9700",
        "1.0000",
        "no",
        "out of tolerance during",
    ]
    assert _table_row(markdown, "p99_ms")[1:6] == ["in [0, 250]", "20.0", "120.0", "20.0", "yes"]
    assert _table_row(markdown, "recovery_s")[2:6] == ["-", "-", "12.2", "yes"]
    assert "Verdict: **deviated**: success_ratio (out of tolerance during)." in markdown
    assert "SIGKILL worker node 2 (pid 1234)" in markdown
    assert "10.0-18.0 s, 22.0-25.0 s" in markdown
    assert "`var/chaos/public-nodes-30/journal.json`" in markdown


def test_markdown_says_which_activity_made_the_verdict_error() -> None:
    # CI once reported "Verdict: **error**." with every probe ok and nothing to say why.
    result = _result(failing=False)
    result["verdict"] = "error"
    result["failures"] = ["wait for replicas (RuntimeError: public-a did not reach 2 replicas)"]
    markdown = render_markdown(result)
    assert (
        "Verdict: **error**: failed: wait for replicas "
        "(RuntimeError: public-a did not reach 2 replicas)." in markdown
    )


def test_markdown_says_why_an_unrestored_drill_did_not_pass() -> None:
    result = _result(failing=False)
    result["restored"] = {"ok": False, "differences": ["replicas: 3 != 2"]}
    markdown = render_markdown(result)
    assert "not verified restored, so the drill cannot pass" in markdown
    assert "- replicas: 3 != 2" in markdown


def test_regex_pipe_does_not_split_the_cell() -> None:
    result = _result(failing=False)
    regex = {"type": "regex", "pattern": "^(ok|fine)$"}
    result["probes"] = [
        probe_row("health", regex, dict.fromkeys(("before", "during", "after"), "ok")).to_dict()
    ]
    assert _table_row(render_markdown(result), "health")[1] == r"matches /^(ok\|fine)$/"


def test_write_report_writes_markdown_and_png(tmp_path: Path) -> None:
    md_path, png_path = write_report(_result(failing=True), tmp_path / "out")
    assert md_path == tmp_path / "out" / "public-nodes-30.md"
    assert "![timeline](public-nodes-30.png)" in md_path.read_text()
    data = png_path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # four panels with lines, not an empty canvas
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert 600 <= width <= 1500
    assert height > 400


def test_empty_timeline_still_renders(tmp_path: Path) -> None:
    result = _result(failing=False) | {"timeline": [], "events": [], "fault_windows": []}
    _, png_path = write_report(result, tmp_path)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_table_lists_deviations() -> None:
    passed = _result(failing=False, drill="zone-out")
    failed = _result(failing=True)
    failed["restored"] = {"ok": False, "differences": ["x"]}
    lines = summary_table([passed, failed]).splitlines()
    assert lines[0].startswith("| drill | verdict | calls |")
    by_drill = {
        ln.split("|")[1].strip(): [c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]
    }
    assert by_drill["zone-out"] == [
        "zone-out",
        "passed",
        "2000",
        "60 (45/15)",
        "120.0",
        "12.2",
        "-",
    ]
    assert by_drill["public-nodes-30"][1] == "deviated"
    assert by_drill["public-nodes-30"][6] == "success_ratio, not restored"


def test_result_round_trips_and_refuses_unknown_fields() -> None:
    result = _result(failing=True)
    assert json.loads(json.dumps(DrillResult.from_dict(result).to_dict())) == result
    with pytest.raises(pydantic.ValidationError, match="recovery_sec"):
        DrillResult.from_dict(result | {"recovery_sec": 3.0})
    with pytest.raises(pydantic.ValidationError, match=r"start \(9.0\) must be <= end \(2.0\)"):
        DrillResult.from_dict(result | {"fault_windows": [[9.0, 2.0]]})
