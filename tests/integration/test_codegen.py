"""Committed generated code must be exactly what `isthmus protos gen` produces now."""

from __future__ import annotations

from pathlib import Path

from services.contract import codegen


def test_committed_generated_code_is_fresh() -> None:
    assert codegen.stale_files() == [], "run `isthmus protos gen` and commit gen/python"


def test_staleness_is_detected(tmp_path: Path) -> None:
    out = tmp_path / "python"
    codegen.generate(out)
    assert codegen.stale_files(out) == []
    (out / "isthmus/ads/v1/ads_pb2.py").write_text("# edited by hand\n")
    (out / "isthmus/ads/v1/leftover_pb2.py").write_text("")
    assert codegen.stale_files(out) == [
        "isthmus/ads/v1/ads_pb2.py",
        "isthmus/ads/v1/leftover_pb2.py",
    ]
