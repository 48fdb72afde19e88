"""The images' Containerfiles, checked statically (no container engine here): multi-stage,
bases pinned to an exact release, the final stage runs as a non-root user and carries no
build tools, and everything they COPY from the repository exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "deploy" / "images").glob("*.Containerfile"))
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|make|clang|cargo|rustc)\b")


def stages(text: str) -> list[list[str]]:
    """Instructions per stage (continuation lines joined, comments dropped)."""
    joined = re.sub(r"\\\n", " ", text)
    out: list[list[str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append([])
        out[-1].append(line)
    return out


def test_there_are_images_for_the_services_and_ray() -> None:
    assert {p.name for p in FILES} == {"services.Containerfile", "ray.Containerfile"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_containerfile_rules(path: Path) -> None:
    parts = stages(path.read_text())
    assert len(parts) >= 2, "multi-stage: a build stage and a runtime stage"
    for stage in parts:
        image = stage[0].split()[1]
        tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        assert tag, f"unpinned base {image}"
        assert tag != "latest", f"unpinned base {image}"
        assert re.search(r"\d+\.\d+", tag), f"unpinned base {image}"
    final = parts[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage sets USER"
    assert users[-1].split(":")[0] not in {"0", "root"}
    runs = " ".join(line for line in final if line.upper().startswith("RUN "))
    assert not BUILD_TOOLS.search(runs), f"build tools in the final stage: {runs}"
    for stage in parts:
        for line in stage:
            words = line.split()
            if words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
                sources = [w for w in words[1:-1] if not w.startswith("--")]
                for source in sources:
                    assert (ROOT / source).exists() or source.startswith("var/"), source
