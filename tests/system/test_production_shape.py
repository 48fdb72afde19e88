"""The local cloud in production's shape, drilled: `isthmus up` with the embedded topology's
shape (two gateway instances, public-a on a head and three Ray worker nodes, public-b warm),
`isthmus status`, every chaos drill that runs here passing against it, each failing
with its protection switched off, a drill interrupted with SIGINT mid-fault still rolling
back, and `isthmus down` leaving no process, namespace or link behind.

One platform for the module (bringing it up takes ~2 minutes on two cores); the drills run
through the `isthmus chaos` CLI as an SRE would run them, and each asserts on the result
file the run writes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.local import netns
from services.local.supervisor import RunState, run_processes
from tests.system.test_platform import free_ports, isthmus

pytestmark = pytest.mark.system
ROOT = Path(__file__).resolve().parents[2]
ISOLATE = netns.can_isolate()


def production_topology(tmp: Path) -> dict[str, Any]:
    """The embedded default topology with free ports and the data under `tmp`."""
    doc = yaml.safe_load((ROOT / "services" / "topology" / "local.yaml").read_text())
    ports = iter(free_ports(9))
    doc["gateway"]["listen"]["port"] = next(ports)
    doc["zones"][0]["database"]["port"] = next(ports)
    for zone in doc["zones"]:
        for service in zone["services"]:
            for endpoint in service["endpoints"]:
                endpoint["port"] = next(ports)
    data = tmp / "data"
    doc["data"] = {
        "landing_uri": str(data / "public" / "landing"),
        "warehouse_uri": str(data / "private" / "warehouse"),
        "quarantine_uri": str(data / "private" / "quarantine"),
        "checkpoint_uri": str(data / "private" / "checkpoints"),
        "features_uri": str(data / "public" / "features"),
        "k_anonymity": 5,
    }
    return doc


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("shape")
    topology = tmp / "topology.yaml"
    topology.write_text(yaml.safe_dump(production_topology(tmp)))
    run_dir = tmp / "run"
    isolation = "--isolate" if ISOLATE else "--no-isolate"
    started = isthmus("up", isolation, "--topology", str(topology), "--run-dir", str(run_dir))
    state = RunState.load(run_dir / "state.json") if (run_dir / "state.json").exists() else None
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        assert state is not None
        yield run_dir
    finally:
        stopped = isthmus("down", "--run-dir", str(run_dir))
        pointer = tmp / "private" / "postgres.location"  # the cluster outside pytest's 0700 tmp
        if pointer.exists():
            shutil.rmtree(pointer.read_text().strip(), ignore_errors=True)
        assert stopped.returncode == 0, stopped.stderr
        if state is not None:
            assert run_processes(state.run_id) == []
            if state.isolated:
                listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
                assert not any(ns in listed.stdout for ns in state.namespaces)


# Short forms for CI: each sync run starts a JVM (about a minute on two cores under the
# drill's load), and one kill or cut shows what more would; repeated kills at random points
# are tests/system/test_sync_kill.py's (ten of them, with replays and bad lines landing).
SHORT: dict[str, list[str]] = {
    "sync-killed": ["--var", "kills=1"],
    "sync-partition": ["--var", "cuts=1"],
}


def drill(
    run_dir: Path, name: str, *extra: str, without: str = "", reports_name: str = "reports"
) -> dict[str, Any]:
    reports = run_dir.parent / reports_name
    switch = ["--without", without] if without else []
    done = isthmus(
        "chaos",
        "run",
        name,
        "--run-dir",
        str(run_dir),
        "--report-dir",
        str(reports),
        *SHORT.get(name, []),
        *switch,
        *extra,
    )
    label = name + (f"-without-{without}" if without else "")
    result_file = reports / f"{label}.json"
    assert result_file.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(result_file.read_text())
    result["_report"] = (reports / f"{label}.md").read_text()
    result["_returncode"] = done.returncode
    return result


def test_up_prints_and_runs_the_production_shape(platform: Path) -> None:
    state = RunState.load(platform / "state.json")
    kinds = [(p.zone, p.kind) for p in state.processes]
    assert kinds.count((None, "gateway")) == 2
    assert kinds.count(("public-a", "ray-worker")) == 3
    assert kinds.count(("public-b", "ray-worker")) == 1
    assert kinds.count(("private", "database")) == 1
    assert ("public-b", "service") in kinds
    status = isthmus("status", "--run-dir", str(platform))
    assert status.returncode == 0, status.stdout + status.stderr
    for process in state.processes:
        assert process.name in status.stdout
    assert "RESTARTS" in status.stdout


# The sync drills run first: every Track call lands a file, and a sync run pays per file
# it has not read yet (without its checkpoint, per file landed since `up`), so later they
# would read the other drills' traffic too.
SYNC_DRILLS = ["sync-killed", "sync-partition"]
DRILLS = [
    "replicas-30",
    "public-nodes-30",
    "gateway-instance-killed",
    "zone-out",
    "db-down",
]


@pytest.mark.parametrize("name", SYNC_DRILLS)
def test_sync_drill_passes(platform: Path, name: str) -> None:
    test_drill_passes(platform, name)


@pytest.mark.parametrize(
    ("name", "protection", "deviations"),
    [
        # Without its checkpoint the sync refuses to run (its tables are ahead of it: a
        # fresh checkpoint would number its batches from 0 again and the tables would skip
        # them), so the events acknowledged meanwhile stay out of the warehouse.
        (
            "sync-killed",
            "checkpoint",
            {"acknowledged events not in the warehouse exactly once (after the catch-up)"},
        ),
        # Spark commits a batch whose planned files were gone when it listed them; without
        # the record of what it did not read, nothing lands them again.
        (
            "sync-partition",
            "completeness",
            {"acknowledged events not in the warehouse exactly once (after the heal)"},
        ),
    ],
)
def test_sync_drill_fails_without_its_protection(
    platform: Path, name: str, protection: str, deviations: set[str]
) -> None:
    result = fails_without(platform, name, protection, deviations)
    if protection == "checkpoint":  # the loss is refused, not silent
        events = [e["what"] for e in result["events"]]
        assert any("CheckpointMismatch" in e for e in events), events


@pytest.mark.parametrize("name", DRILLS)
def test_drill_passes(platform: Path, name: str) -> None:
    result = drill(platform, name)
    assert result["verdict"] == "passed", result["_report"]
    assert result["_returncode"] == 0
    assert result["restored"]["ok"], result["_report"]
    assert result["fault_windows"], result["_report"]  # the fault really happened
    if name == "public-nodes-30":  # replicas back on several nodes, each its own endpoint
        published = json.loads((platform / "ads-a.endpoints.json").read_text())["endpoints"]
        addresses = [f"{e['host']}:{e['port']}" for e in published]
        assert len(set(addresses)) == len(addresses), addresses
    if name == "sync-partition":  # a cut run fails loudly instead of committing a short batch
        assert any("the sync exited 1" in e["what"] for e in result["events"]), result["_report"]


def test_gateway_instance_kill_is_counted_by_the_supervisor(platform: Path) -> None:
    """After gateway-instance-killed, `isthmus status` shows a restart of a gateway."""
    state = RunState.load(platform / "state.json")
    assert sum(p.restarts for p in state.processes if p.kind == "gateway") >= 1
    status = isthmus("status", "--run-dir", str(platform))
    assert status.returncode == 0, status.stdout


@pytest.mark.skipif(not ISOLATE, reason="needs root and `ip` for the zone namespaces")
def test_private_partition_fails_fast_and_closed(platform: Path) -> None:
    result = drill(platform, "private-partition")
    assert result["verdict"] == "passed", result["_report"]
    assert result["recovery_s"] is not None


@pytest.mark.skipif(not ISOLATE, reason="needs root, `ip` and `nft` in the zone namespaces")
def test_latency_and_loss_on_the_public_link_fail_no_call(platform: Path) -> None:
    result = drill(platform, "latency-loss")
    assert result["verdict"] == "passed", result["_report"]
    assert result["restored"]["ok"], result["_report"]  # no drop or DNAT rule left behind
    # the gateway's calls to public-a really went through the delay proxy
    relayed = [e["what"] for e in result["events"] if "delay proxy to public-a" in e["what"]]
    assert relayed, result["_report"]
    assert not relayed[0].endswith("relayed 0 connections, 0 bytes"), result["_report"]


NEEDS_NAMESPACES = pytest.mark.skipif(not ISOLATE, reason="needs root, `ip` and `nft`")


@pytest.mark.parametrize(
    ("name", "protection", "deviations"),
    [
        ("replicas-30", "retries", {"degraded share of Rank answers"}),
        ("zone-out", "failover", {"public success ratio, public-a out"}),
        # The killed node stays down: Serve has not rescheduled its replicas 8 s later, and
        # the supervisor's own probe counts it (whichever the hypothesis meets first).
        (
            "public-nodes-30",
            "restarts",
            {"public-a replicas running", "supervised processes not running"},
        ),
        # The calls in flight on the killed instance fail at the transport; only the
        # callers' retries (on a new connection to the survivor) save them.
        (
            "gateway-instance-killed",
            "client-retries",
            {"public success ratio", "sensitive success ratio"},
        ),
        # Asynchronous commit acknowledges orders whose WAL is still in memory when the
        # database is stopped hard.
        ("db-down", "durable-commits", {"acknowledged orders not stored exactly once"}),
        pytest.param(
            "private-partition",
            "per-try-timeout",
            {"SENSITIVE failures only UNAVAILABLE", "slowest failed SENSITIVE call (ms)"},
            marks=NEEDS_NAMESPACES,
        ),
        pytest.param(
            "latency-loss",
            "retries",
            {
                "public success ratio",
                "Rank answers degraded under latency and loss (share, reported)",
            },
            marks=NEEDS_NAMESPACES,
        ),
    ],
)
def test_drill_fails_without_its_protection(
    platform: Path, name: str, protection: str, deviations: set[str]
) -> None:
    fails_without(platform, name, protection, deviations)


def fails_without(
    platform: Path, name: str, protection: str, deviations: set[str]
) -> dict[str, Any]:
    # A drill gets up to three runs to show what the protection prevents: what a fault
    # catches in flight is a matter of timing (replicas-30 freezes its victims for that).
    if protection == "checkpoint" and not synced_before(platform):
        # a platform that has synced before, as any in service (run alone, this test lands
        # a file and syncs it: a sync of an empty landing log commits no batch)
        land_and_sync(platform)
        assert synced_before(platform)
    for _ in range(3):
        result = drill(platform, name, without=protection)
        if result["verdict"] != "passed":
            break
    assert result["verdict"] == "deviated", result["_report"]
    assert result["_returncode"] == 1
    failing = {p["name"] for p in result["probes"] if not p["ok"]}
    assert failing & deviations, result["_report"]
    assert result["restored"]["ok"], result["_report"]  # the protection is back on
    return result


def land_and_sync(run_dir: Path) -> None:
    from chaos.local.platform import Platform
    from ray_jobs.sync.config import Locations
    from services.local.demo import run_sync
    from services.public.events.landing import LandingLog
    from tests.support.events import records

    locs = Locations.from_spec(Platform.load(run_dir).topology.data)
    landing = LandingLog(locs.landing.path)
    landing.append(records(5, users=["p_before"], prefix="before-"))
    landing.close()
    run_sync(RunState.load(run_dir / "state.json"), run_dir, "events")


def synced_before(run_dir: Path) -> bool:
    from chaos.local.platform import Platform
    from ray_jobs.sync.config import Locations
    from ray_jobs.sync.prune import committed_batches

    locs = Locations.from_spec(Platform.load(run_dir).topology.data)
    return bool(committed_batches(locs.sync_checkpoint.path))


def test_sigint_mid_fault_still_rolls_back(platform: Path) -> None:
    reports = platform.parent / "reports-sigint"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "chaos",
            "run",
            "zone-out",
            "--run-dir",
            str(platform),
            "--report-dir",
            str(reports),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: zone_is_out(platform, "public-a"), timeout_s=90)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = json.loads((reports / "zone-out.json").read_text())
    assert result["verdict"] == "interrupted", output[-3000:]
    assert [r["status"] for r in result["rollbacks"]] == ["succeeded"], output[-3000:]
    assert result["restored"]["ok"], output[-3000:]
    assert not zone_is_out(platform, "public-a")
    assert not zone_is_out(platform, "public-b")


def zone_is_out(run_dir: Path, zone: str) -> bool:
    """Its link down (namespaces) or its processes stopped (loopback)."""
    from chaos.local.platform import Platform, link_is_up

    platform = Platform.load(run_dir)
    if platform.net is not None:
        link = platform.zone_link(zone)
        return not link_is_up(link.near_ns, link.near_if)
    for process in platform.processes(zone=zone):
        stat = Path(f"/proc/{process.pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "T":
            return True
    return False


def wait_for(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"condition not met within {timeout_s}s")


def test_no_drill_runs_on_a_topology_that_does_not_allow_it(platform: Path, tmp_path: Path) -> None:
    """Take the chaos allowance out of the runtime topology: the drill is refused before any
    fault (and the platform is untouched)."""
    topology = platform / "topology.yaml"
    original = topology.read_text()
    doc = yaml.safe_load(original)
    doc.pop("chaos", None)
    try:
        topology.write_text(yaml.safe_dump(doc, sort_keys=False))
        result = drill(platform, "replicas-30", reports_name="reports-refused")
    finally:
        topology.write_text(original)
    assert result["verdict"] == "refused", result["_report"]
    assert result["fault_windows"] == []
    assert os.path.exists(platform / "state.json")
