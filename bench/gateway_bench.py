"""Gateway overhead, one run, same upstream: direct vs nginx `grpc_pass` vs the gateway, and
the gateway as it was before the work on it as every team's door (`--baseline`, a commit:
its tree is taken with `git archive` and run with this checkout's generated code).

The request is a 10-candidate Rank for a known viewer: its pseudonymous id is minted under
the bench's check key, which the gateway under test holds (so it verifies the id; the
baseline predates the check). Latency: 1 call in flight; throughput: 32 in flight from 2
client processes; every status is checked. Each proxy's CPU per call is read from /proc
(user + system time of its processes
over the throughput run, divided by the calls answered); the PII inspection's share is its
in-process cost on the same request (bench/inspection_bench.py) over the gateway's CPU per
call. Results go to bench/results/gateway.json.

    .venv/bin/python -m bench.gateway_bench --seconds 5 [--repeats 5] [--baseline 4f695e1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
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
CHECK_KEY_HEX = "ce" * 32
# The last commit before the gateway's routes, retries, inspection and contracts were reworked
# (issue 17): "before" in the comparison.
BASELINE = "4f695e1"


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
    command: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT
) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
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
    work: Path,
    listen: int,
    upstream: int,
    trace_sample_ratio: float = 1.0,
    check_pseudonyms: bool = True,
) -> tuple[Path, Path]:
    """`check_pseudonyms`: give the gateway the pseudonymous ids' check key (the baseline
    predates it and would refuse the setting)."""
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
    if check_pseudonyms:
        with config.open("a") as out:
            out.write("pseudonym_check_key: {env: ISTHMUS_BENCH_CHECK_KEY}\n")
    return topology, config


def request_bytes() -> bytes:
    """A 10-candidate Rank for a known viewer (a pseudonymous id minted under the bench's
    check key, as the private zone would mint it)."""
    from services.core import pseudonym

    return ads_pb2.RankRequest(
        request_id="bench",
        pseudonymous_user_id=pseudonym.mint(b"p" * 32, bytes.fromhex(CHECK_KEY_HEX), "u-bench"),
        context=ads_pb2.RankContext(placement_id="home", slot_count=3),
        candidates=[
            ads_pb2.Candidate(ad_id=f"ad-{i}", campaign_id="c", cpc_bid_micros=100 + i)
            for i in range(10)
        ],
    ).SerializeToString()


def measure(
    target: str, metadata: tuple[tuple[str, str], ...], seconds: float, pids: list[int]
) -> dict[str, Any]:
    """Latency at 1 in flight, throughput at 32, and the CPU the proxy's processes (`pids`,
    none for a direct call) spent per call answered during the throughput run."""
    body = request_bytes()
    latency = run_load(target, PATH, body, metadata, concurrency=1, seconds=seconds, processes=1)
    before = cpu_seconds(pids)
    throughput = run_load(
        target, PATH, body, metadata, concurrency=32, seconds=seconds, processes=2
    )
    spent = cpu_seconds(pids) - before
    result = {"latency_c1": latency.summary(), "throughput_c32": throughput.summary()}
    answered = result["throughput_c32"]["ok"]
    if pids and answered:
        result["cpu_us_per_call"] = round(spent / answered * 1e6, 1)
    return result


def cpu_per_call(
    target: str, metadata: tuple[tuple[str, str], ...], seconds: float, pids: list[int]
) -> float:
    """One more throughput run (32 in flight): the proxy's CPU microseconds per call."""
    before = cpu_seconds(pids)
    run = run_load(
        target, PATH, request_bytes(), metadata, concurrency=32, seconds=seconds, processes=2
    )
    return round((cpu_seconds(pids) - before) / max(run.summary()["ok"], 1) * 1e6, 1)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their waited-for children."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / ticks


def children(pid: int) -> list[int]:
    """nginx's workers (its master only waits)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


def baseline_tree(ref: str, work: Path) -> Path:
    """The repository at `ref`, unpacked (not a worktree: nothing to clean up in .git)."""
    tree = work / "baseline"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def inspection_us(rounds: int = 2000) -> float:
    """The inspection's CPU per call on the bench's request, in process (personal shapes and
    the viewer's pseudonymous id, under the check key; the id verified once, then cached,
    as the gateway does)."""
    from bench.inspection_bench import per_call_us
    from services.contract.descriptors import load_descriptor_set, method_table
    from services.gateway.inspection import RequestInspector

    descriptors = load_descriptor_set()
    method = method_table(descriptors)["/isthmus.ads.v1.AdService/Rank"]
    inspector = RequestInspector(descriptors, bytes.fromhex(CHECK_KEY_HEX))
    return per_call_us(lambda raw: inspector.check(method, raw), request_bytes(), rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    parser.add_argument(
        "--repeats", type=int, default=5, help="throughput runs per gateway for CPU per call"
    )
    parser.add_argument(
        "--baseline",
        default=BASELINE,
        help="commit whose gateway is 'before' ('' to skip); default: %(default)s",
    )
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
            env = {
                **os.environ,
                "ISTHMUS_BENCH_TOKEN_KEY": KEY_HEX,
                "ISTHMUS_BENCH_CHECK_KEY": CHECK_KEY_HEX,
            }
            gateway_proc, line = start(gateway_argv(topology, config), env)
            procs.append(gateway_proc)
            assert line.startswith("listening on"), line
            gateways = {"gateway": (gateway_port, gateway_proc.pid)}
            if args.baseline:
                tree = baseline_tree(args.baseline, work)
                old_port = free_port()
                old_topology, old_config = gateway_files(
                    tree, old_port, int(upstream), args.trace_sample_ratio, False
                )
                # Its own code first, this checkout's generated protos (additive since).
                path = f"{tree}{os.pathsep}{ROOT / 'gen' / 'python'}"
                old_proc, line = start(
                    gateway_argv(old_topology, old_config), {**env, "PYTHONPATH": path}, tree
                )
                procs.append(old_proc)
                assert line.startswith("listening on"), line
                gateways["gateway_baseline"] = (old_port, old_proc.pid)
            time.sleep(1.0)
            token = issue_token(bytes.fromhex(KEY_HEX), "bench", int(time.time()) + 3600)
            bearer = (("authorization", f"Bearer {token}"),)
            results = {
                "direct": measure(f"127.0.0.1:{upstream}", (), args.seconds, []),
                "nginx": measure(
                    f"127.0.0.1:{nginx_port}", (), args.seconds, children(procs[1].pid)
                ),
            }
            for name, (port, pid) in gateways.items():
                results[name] = measure(f"127.0.0.1:{port}", bearer, args.seconds, [pid])
            # CPU per call moves by +-15% between runs on this shared box: more throughput
            # runs, the gateways alternating (and the order flipped each round), medians.
            names = list(gateways)
            samples: dict[str, list[float]] = {
                n: [results[n]["cpu_us_per_call"]] if "cpu_us_per_call" in results[n] else []
                for n in names
            }
            for round_ in range(args.repeats - 1):
                for name in names[::-1] if round_ % 2 == 0 else names:
                    port, pid = gateways[name]
                    samples[name].append(
                        cpu_per_call(f"127.0.0.1:{port}", bearer, args.seconds, [pid])
                    )
            for name in names:  # a run that answered nothing says so in its errors
                results[name]["cpu_us_per_call_runs"] = samples[name]
                if samples[name]:
                    results[name]["cpu_us_per_call"] = round(statistics.median(samples[name]), 1)
            inspection = inspection_us()
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGTERM if proc is not procs[1] else signal.SIGQUIT)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    report = compare(results, inspection)
    # Two other engineers' jobs share this box: the load average says how noisy a run was.
    report["machine"]["loadavg_1_5_15_before"] = [round(x, 2) for x in load_before]
    report["machine"]["loadavg_1_5_15_after"] = [round(x, 2) for x in os.getloadavg()]
    report["setup"] = {
        "baseline_commit": args.baseline or None,
        "nginx_worker_processes": 1,
        "gateway_processes": 1,
        "gateway_trace_sample_ratio": args.trace_sample_ratio,
        "seconds_per_measurement": args.seconds,
        "cpu_runs_per_gateway": args.repeats,
        "load_client": "grpc.aio, latency: 1 in flight; throughput: 32 in flight, 2 processes",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"machine": report["machine"], **report["comparison"]}, indent=2))
    print(f"written to {args.out}")


def gateway_argv(topology: Path, config: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "services.cli",
        "gateway",
        "--topology",
        str(topology),
        "--config",
        str(config),
    ]


def compare(results: dict[str, Any], inspection_us_per_call: float) -> dict[str, Any]:
    def lat(name: str, key: str) -> float:
        return float(results[name]["latency_c1"][key])

    added = {
        proxy: {q: round(lat(proxy, q) - lat("direct", q), 3) for q in ("p50_ms", "p99_ms")}
        for proxy in results
        if proxy != "direct"
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
            **cpu_comparison(results, inspection_us_per_call),
        },
    }


def cpu_comparison(results: dict[str, Any], inspection_us_per_call: float) -> dict[str, Any]:
    """CPU per call of each proxy, the gateway now over before, and the inspection's share."""
    cpu = {n: r["cpu_us_per_call"] for n, r in results.items() if "cpu_us_per_call" in r}
    out: dict[str, Any] = {
        "cpu_us_per_call": cpu,
        "inspection_us_per_call": inspection_us_per_call,
    }
    if "gateway" in cpu:
        out["inspection_share_of_gateway_cpu"] = round(inspection_us_per_call / cpu["gateway"], 4)
    if "gateway" in cpu and "gateway_baseline" in cpu:
        out["gateway_cpu_now_over_before"] = round(cpu["gateway"] / cpu["gateway_baseline"], 3)
    return out


if __name__ == "__main__":
    main()
