"""Gateway overhead, one run, same upstream: direct vs nginx `grpc_pass` vs the gateway.

Latency: 1 call in flight; throughput: 32 in flight from 2 client processes; every status is
checked. Results go to bench/results/gateway.json.

    .venv/bin/python -m bench.gateway_bench --seconds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.grpc_load import run_load
from isthmus.ads.v1 import ads_pb2
from services.gateway.auth import issue_token

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gateway.json"
PATH = "/isthmus.ads.v1.AdService/Rank"
KEY_HEX = "cd" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("nginx is missing; install Debian's nginx-light")
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=True)
    return "/usr/sbin/nginx"


def start(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def nginx_conf(work: Path, listen: int, upstream: int) -> Path:
    conf = work / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/body;
  upstream ads {{ server 127.0.0.1:{upstream}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{listen} http2;
    location / {{ grpc_pass grpc://ads; }}
  }}
}}
""")
    return conf


def gateway_files(
    work: Path, listen: int, upstream: int, trace_sample_ratio: float = 1.0
) -> tuple[Path, Path]:
    topology = work / "topology.yaml"
    topology.write_text(f"""
name: bench
gateway: {{listen: {{host: 127.0.0.1, port: {listen}}}}}
zones:
  - {{name: private, kind: private}}
  - name: public-a
    kind: public
    services:
      - {{name: ads-a, kind: ads, endpoints: [{{host: 127.0.0.1, port: {upstream}}}]}}
""")
    config = work / "gateway.yaml"
    config.write_text(f"""
auth:
  token_key: {{env: ISTHMUS_BENCH_TOKEN_KEY}}
  callers:
    - {{name: bench, allow: ["*"], rate_per_s: 1000000, burst: 1000000}}
server:
  listen: {{host: 127.0.0.1, port: {listen}}}
  telemetry: {{trace_sample_ratio: {trace_sample_ratio}}}
""")
    return topology, config


def request_bytes() -> bytes:
    return ads_pb2.RankRequest(
        request_id="bench",
        context=ads_pb2.RankContext(placement_id="home", slot_count=3),
        candidates=[
            ads_pb2.Candidate(ad_id=f"ad-{i}", campaign_id="c", cpc_bid_micros=100 + i)
            for i in range(10)
        ],
    ).SerializeToString()


def measure(target: str, metadata: tuple[tuple[str, str], ...], seconds: float) -> dict[str, Any]:
    body = request_bytes()
    latency = run_load(target, PATH, body, metadata, concurrency=1, seconds=seconds, processes=1)
    throughput = run_load(
        target, PATH, body, metadata, concurrency=32, seconds=seconds, processes=2
    )
    return {"latency_c1": latency.summary(), "throughput_c32": throughput.summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    parser.add_argument(
        "--trace-sample-ratio",
        type=float,
        default=1.0,
        help="the gateway's telemetry.trace_sample_ratio (metrics always see every call)",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    nginx = ensure_nginx()
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="isthmus-gw-bench-") as tmp:
        work = Path(tmp)
        try:
            upstream_proc, upstream = start([sys.executable, "-m", "bench.ads_upstream"])
            procs.append(upstream_proc)
            nginx_port, gateway_port = free_port(), free_port()
            conf = nginx_conf(work, nginx_port, int(upstream))
            procs.append(
                subprocess.Popen(
                    [nginx, "-c", str(conf), "-p", str(work)], stderr=subprocess.DEVNULL
                )
            )
            topology, config = gateway_files(
                work, gateway_port, int(upstream), args.trace_sample_ratio
            )
            env = {**os.environ, "ISTHMUS_BENCH_TOKEN_KEY": KEY_HEX}
            gateway_proc, line = start(
                [
                    sys.executable,
                    "-m",
                    "services.cli",
                    "gateway",
                    "--topology",
                    str(topology),
                    "--config",
                    str(config),
                ],
                env,
            )
            procs.append(gateway_proc)
            assert line.startswith("listening on"), line
            time.sleep(1.0)
            token = issue_token(bytes.fromhex(KEY_HEX), "bench", int(time.time()) + 3600)
            results = {
                "direct": measure(f"127.0.0.1:{upstream}", (), args.seconds),
                "nginx": measure(f"127.0.0.1:{nginx_port}", (), args.seconds),
                "gateway": measure(
                    f"127.0.0.1:{gateway_port}",
                    (("authorization", f"Bearer {token}"),),
                    args.seconds,
                ),
            }
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGTERM if proc is not procs[1] else signal.SIGQUIT)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    report = compare(results)
    # Two other engineers' jobs share this box: the load average says how noisy a run was.
    report["machine"]["loadavg_1_5_15_before"] = [round(x, 2) for x in load_before]
    report["machine"]["loadavg_1_5_15_after"] = [round(x, 2) for x in os.getloadavg()]
    report["setup"] = {
        "nginx_worker_processes": 1,
        "gateway_processes": 1,
        "gateway_trace_sample_ratio": args.trace_sample_ratio,
        "seconds_per_measurement": args.seconds,
        "load_client": "grpc.aio, latency: 1 in flight; throughput: 32 in flight, 2 processes",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"machine": report["machine"], **report["comparison"]}, indent=2))
    print(f"written to {args.out}")


def compare(results: dict[str, Any]) -> dict[str, Any]:
    def lat(name: str, key: str) -> float:
        return float(results[name]["latency_c1"][key])

    added = {
        proxy: {q: round(lat(proxy, q) - lat("direct", q), 3) for q in ("p50_ms", "p99_ms")}
        for proxy in ("nginx", "gateway")
    }
    rps = {name: results[name]["throughput_c32"]["rps"] for name in results}
    budget_p50 = 1.5 * added["nginx"]["p50_ms"] + 0.3
    return {
        "machine": {"cpus": os.cpu_count()},
        "results": results,
        "comparison": {
            "added_latency_ms": added,
            "rps_c32": rps,
            "gateway_over_nginx_rps": round(rps["gateway"] / rps["nginx"], 2),
            "goal_added_p50_ms_at_most": round(budget_p50, 3),
            "goal_added_p50_met": added["gateway"]["p50_ms"] <= budget_p50,
            "goal_rps_ratio_met": rps["gateway"] >= 0.8 * rps["nginx"],
        },
    }


if __name__ == "__main__":
    main()
