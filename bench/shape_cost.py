"""What production's shape costs on this machine: the local cloud brought up in the minimal
shape and in the production shape (the embedded topologies), one after the other in one run;
for each, the idle CPU and memory of every process group over a quiet window, then a short
demo's Rank p50/p99 through the gateway.

    .venv/bin/python -m bench.shape_cost [--idle-s 30] [--demo-s 60]

Groups: each Ray node (its `ray start` process and everything under it but the ranking
replicas), the ranking replicas, each public zone as a whole, the gateway instances, the
private zone. Memory is PSS (shared pages split between the processes sharing them), summed;
CPU is the share of one core used over the idle window. Writes bench/results/shape_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "shape_cost.json"
TICKS = os.sysconf("SC_CLK_TCK")


def isthmus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )


def descendants(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        try:
            kids = Path(f"/proc/{stack.pop()}/task").glob("*/children")
            for path in kids:
                for child in map(int, path.read_text().split()):
                    out.append(child)
                    stack.append(child)
        except OSError:
            continue
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def groups(run_dir: Path) -> dict[str, set[int]]:
    """Process group name -> PIDs."""
    state = json.loads((run_dir / "state.json").read_text())
    out: dict[str, set[int]] = defaultdict(set)
    for p in state["processes"]:
        tree = {p["pid"], *descendants(p["pid"])}
        replicas = {pid for pid in tree if cmdline(pid).startswith("ray::ServeReplica")}
        zone = p["zone"] or "gateway"
        out[f"zone {zone}"] |= tree
        out[f"{p['kind']} {p['name']}"] |= tree - replicas
        if replicas:
            out[f"replicas {zone}"] |= replicas
    return out


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def idle_cost(run_dir: Path, seconds: float) -> dict[str, dict[str, float]]:
    found = groups(run_dir)
    pids = set().union(*found.values())
    before = {pid: cpu_ticks(pid) for pid in pids}
    time.sleep(seconds)
    after = {pid: cpu_ticks(pid) for pid in pids}
    cost = {}
    for name, members in sorted(found.items()):
        ticks = sum(after[p] - before[p] for p in members)
        cost[name] = {
            "cpu_percent_of_one_core": round(100 * ticks / TICKS / seconds, 2),
            "pss_mib": round(sum(pss_kib(p) for p in members) / 1024, 1),
            "processes": len(members),
        }
    return cost


def shape(name: str, idle_s: float, demo_s: float, work: Path) -> dict[str, Any]:
    run_dir, reports = work / name / "run", work / name / "reports"
    up = isthmus("up", "--shape", name, "--run-dir", str(run_dir))
    if up.returncode != 0:
        raise RuntimeError(f"up ({name}) failed:\n{up.stdout[-2000:]}{up.stderr[-2000:]}")
    try:
        time.sleep(10)  # let start-up work (model loads, first health checks) settle
        idle = idle_cost(run_dir, idle_s)
        demo = isthmus(
            "demo",
            "--run-dir",
            str(run_dir),
            "--report-dir",
            str(reports),
            "--seconds",
            str(demo_s),
        )
        summary = json.loads((reports / "demo.json").read_text())
    finally:
        isthmus("down", "--run-dir", str(run_dir))
    rank = summary["by_method"].get("AdService/Rank", {})
    return {
        "idle": idle,
        "demo_returncode": demo.returncode,
        "demo_calls": summary["calls"],
        "rank_p50_ms": rank.get("p50_ms"),
        "rank_p99_ms": rank.get("p99_ms"),
        "replicas": summary["replicas"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--demo-s", type=float, default=60.0)
    args = parser.parse_args()
    work = ROOT / "var" / "bench-shape"
    load = os.getloadavg()
    results = {
        name: shape(name, args.idle_s, args.demo_s, work) for name in ("minimal", "production")
    }
    results["loadavg_at_start"] = list(load)
    results["settings"] = vars(args)
    OUT.write_text(json.dumps(results, indent=1))
    for name in ("minimal", "production"):
        r = results[name]
        idle = r["idle"]
        total_cpu = sum(
            v["cpu_percent_of_one_core"] for k, v in idle.items() if k.startswith("zone")
        )
        total_mem = sum(v["pss_mib"] for k, v in idle.items() if k.startswith("zone"))
        print(
            f"{name}: idle CPU {total_cpu:.1f}% of a core, PSS {total_mem:.0f} MiB; "
            f"demo Rank p50 {r['rank_p50_ms']} ms p99 {r['rank_p99_ms']} ms"
        )
    print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
