"""The whole platform on one machine: `isthmus up`, a shortened `isthmus demo` asserted on its
report, `isthmus down` leaving no process alive (checked by PID); and, as root, the zone
namespaces keeping a public-zone process away from a private-zone service."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from services.local import netns
from services.local.report import leak_scan
from services.local.supervisor import RunState, is_running, run_processes

ROOT = Path(__file__).resolve().parents[2]


# Ray's worker processes take ports 10002-19999, and everything else in a Ray node (and any
# port-0 bind) takes one from the kernel's ephemeral range, inside the zone namespaces too,
# where a free port on the host means nothing. Ports for the topology come from between the
# two, so a Ray node cannot take one first (it once took the Serve proxy's port that way).
RAY_WORKER_PORTS_END = 20_000


def ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_ports(n: int) -> list[int]:
    """`n` distinct ports free on 127.0.0.1, above Ray's worker ports and below the
    ephemeral range."""
    rng = random.SystemRandom()
    ports: list[int] = []
    while len(ports) < n:
        port = rng.randrange(RAY_WORKER_PORTS_END, ephemeral_start())
        if port in ports:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))  # fails if anything listens on it here
            except OSError:
                continue
        ports.append(port)
    return ports


def isthmus(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_up_demo_down(tmp_path: Path) -> None:
    gateway, profile, orders, ads, events = free_ports(5)
    data = tmp_path / "data"
    topology = {
        "name": "systest",
        "gateway": {"listen": {"host": "127.0.0.1", "port": gateway}},
        "zones": [
            {
                "name": "private",
                "kind": "private",
                "services": [
                    {
                        "name": "profile",
                        "kind": "profile",
                        "endpoints": [{"host": "127.0.0.1", "port": profile}],
                    },
                    {
                        "name": "orders",
                        "kind": "orders",
                        "endpoints": [{"host": "127.0.0.1", "port": orders}],
                    },
                ],
            },
            {
                "name": "public-a",
                "kind": "public",
                "ray": {"address": "local", "num_cpus": 2},
                "services": [
                    {
                        "name": "ads-a",
                        "kind": "ads",
                        "endpoints": [{"host": "127.0.0.1", "port": ads}],
                    },
                    {
                        "name": "events-a",
                        "kind": "events",
                        "endpoints": [{"host": "127.0.0.1", "port": events}],
                    },
                ],
            },
        ],
        "data": {
            "landing_uri": str(data / "public" / "landing"),
            "warehouse_uri": str(data / "private" / "warehouse"),
            "quarantine_uri": str(data / "private" / "quarantine"),
            "checkpoint_uri": str(data / "private" / "checkpoints"),
            "features_uri": str(data / "public" / "features"),
            "k_anonymity": 5,
        },
    }
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(topology))
    run_dir = tmp_path / "run"
    reports = tmp_path / "reports"

    started = isthmus(
        "up", "--no-isolate", "--topology", str(topology_file), "--run-dir", str(run_dir)
    )
    state = RunState.load(run_dir / "state.json") if (run_dir / "state.json").exists() else None
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "isthmus is up" in started.stdout
        assert state is not None
        pids = {p.pid for p in state.processes} | set(run_processes(state.run_id))
        assert len(pids) > len(state.processes)  # Ray's daemons and replicas carry the run id

        demo = isthmus(
            "demo",
            "--run-dir",
            str(run_dir),
            "--report-dir",
            str(reports),
            "--seconds",
            "60",
            "--shoppers",
            "40",
            "--base-rps",
            "5",
        )
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        report = json.loads((reports / "demo.json").read_text())
        assert report["calls"]["failed"] == 0
        assert report["calls"]["ok"] > 300
        assert report["sensitive_attempts_on_public_clusters"] == 0
        attempts = report["gateway_attempts_by_cluster_method"]
        assert attempts.get("profile /isthmus.profile.v1.ProfileService/ResolveIdentity", 0) >= 40
        assert attempts.get("ads-a /isthmus.ads.v1.AdService/Rank", 0) > 100
        assert report["pii_scan"]["problem_count"] == 0
        assert report["pii_scan"]["files_scanned"] > 10
        assert report["events_accepted"] > 0
        assert report["sync_events"]["landing_lines"] == report["events_accepted"]
        assert report["export_features"]["version"]
        assert report["replicas"]["max"] >= 2, report["timeline"]
        assert (reports / "demo.png").stat().st_size > 10_000
        assert "peak-season demo" in (reports / "demo.md").read_text()

        # The scan is a real check: a shopper's e-mail planted in a public file is found.
        planted = data / "public" / "landing" / "planted.jsonl"
        planted.write_text(json.dumps({"note": "shopper7@example.com"}) + "\n")
        assert leak_scan(run_dir, [])["problem_count"] == 1
        planted.unlink()
    finally:
        stopped = isthmus("down", "--run-dir", str(run_dir), timeout=300)
    assert stopped.returncode == 0, stopped.stderr
    assert state is not None
    time.sleep(1)
    alive = [pid for pid in pids if is_running(pid)]
    assert alive == [], f"still running after down: {alive}"
    assert run_processes(state.run_id) == []
    for port in (gateway, profile, orders, ads, events):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"


@pytest.mark.skipif(not netns.can_isolate(), reason="network namespaces need root and `ip`")
def test_a_public_zone_process_cannot_reach_a_private_zone_service_netns(tmp_path: Path) -> None:
    net = netns.plan(["private", "public-a"], subnet="10.79", prefix="ismtest")
    netns.apply(net)
    server = None
    try:
        private_ip = net.zone_ip["private"]
        # A real private-zone service (OrderService), listening on its zone address.
        config = tmp_path / "private.yaml"
        config.write_text(
            f"database_url: sqlite:///{tmp_path / 'p.db'}\n"
            f"master_key: {{file: {tmp_path / 'm.key'}, create_if_missing: true}}\n"
            f"hmac_key: {{file: {tmp_path / 'h.key'}, create_if_missing: true}}\n"
        )
        server = subprocess.Popen(
            [
                *netns.exec_prefix(net.zone_ns["private"]),
                sys.executable,
                "-m",
                "services.cli",
                "serve",
                "orders",
                "--config",
                str(config),
                "--listen",
                f"{private_ip}:50062",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert server.stdout is not None
        assert server.stdout.readline().startswith("listening on")

        def connect_from(namespace: str) -> str:
            probe = (
                "import socket\n"
                "try:\n"
                f"    socket.create_connection(('{private_ip}', 50062), timeout=3).close()\n"
                "    print('connected')\n"
                "except OSError as e:\n"
                "    print(type(e).__name__, e.errno)\n"
            )
            done = subprocess.run(
                [*netns.exec_prefix(namespace), sys.executable, "-c", probe],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            return done.stdout.strip()

        assert connect_from(net.gateway_ns) == "connected"  # the gateway's side can
        refused = connect_from(net.zone_ns["public-a"])
        assert refused != "connected", refused  # the public zone cannot
        with socket.socket() as host_probe:  # nor can the host, except through the gateway
            host_probe.settimeout(3)
            assert host_probe.connect_ex((private_ip, 50062)) != 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        netns.remove(net)
    assert not os.path.exists(f"/run/netns/{net.zone_ns['private']}")
