"""`helm test`'s probes: the steady state the chaos drills hold the platform to, read on a
cluster from the servers themselves.

    python -m services.deploy.steady_state --health isthmus-gateway:8081 --health profile:8081 \\
        --gateway-pods isthmus-gateway-pods:9464 --window-s 30 --min-success-ratio 0.999 \\
        --public-method isthmus.ads.v1.AdService/Rank --sensitive-method ... \\
        --public-cluster ads-public-a ...

1. Every server of the release answers grpc.health.v1 SERVING.
2. (`--gateway-pods`, the private release) Over a window of `--window-s`, for each sensitivity
   class, the share of the gateway's calls that did not fail for the platform's reasons is at
   least `--min-success-ratio` (the drills' success-ratio probes, read from the gateway's
   server histogram instead of the callers; a failure is a code the server spans count as an
   error, `SERVER_ERROR_CODES`: a caller's bad request is not the platform failing). A class
   with no calls in the window is reported as not measured, and deviates only with
   `--require-calls`.
3. No gateway pod ever attempted a SENSITIVE method on a public zone's cluster (the drills'
   `sensitive_attempts_on_public_clusters`, from `isthmus_gateway_attempts_total`).

Every gateway pod is scraped: `--gateway-pods` names a headless Service, whose DNS name
resolves to each ready pod. A pod whose counters cannot be read is a deviation; a pod that
became ready during the window is reported, not judged (its counters span its life, not the
window). Prints one line per check and exits 1 on any deviation, so `helm test` fails.
"""

from __future__ import annotations

import argparse
import socket
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from services.core.telemetry import SERVER_ERROR_CODES

CALLS = "rpc_server_call_duration_seconds_count"
ATTEMPTS = "isthmus_gateway_attempts_total"
FAULT_CODES = frozenset(code.name for code in SERVER_ERROR_CODES)


@dataclass(frozen=True)
class Counters:
    """One gateway pod's counters (or a sum, or an increase over a window)."""

    calls: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (method, code)
    attempts: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (cluster, method)


@dataclass(frozen=True)
class ClassWindow:
    """A sensitivity class's calls in the window."""

    name: str
    calls: float
    faults: float

    @property
    def success_ratio(self) -> float | None:
        return None if self.calls == 0 else 1.0 - self.faults / self.calls


# ---- pure -------------------------------------------------------------------------------


def parse(text: str) -> Counters:
    """The two counters the probes read, from a Prometheus text exposition. Methods are kept
    as `pkg.Service/Method` (the attempts counter writes a leading slash; calls do not)."""
    calls: dict[tuple[str, str], float] = defaultdict(float)
    attempts: dict[tuple[str, str], float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            method = labels.get("rpc_method", "?").lstrip("/")
            if sample.name == CALLS:
                calls[(method, labels.get("rpc_response_status_code", "?"))] += sample.value
            elif sample.name == ATTEMPTS:
                attempts[(labels.get("cluster", "?"), method)] += sample.value
    return Counters(dict(calls), dict(attempts))


def increase(before: Counters | None, after: Counters) -> Counters:
    """What each counter added between two scrapes of one pod. A counter that went down was
    reset (the pod's process restarted): its increase is its new value, as PromQL counts it."""

    def one(
        old: Mapping[tuple[str, str], float], new: Mapping[tuple[str, str], float]
    ) -> dict[tuple[str, str], float]:
        out = {}
        for key, value in new.items():
            prior = old.get(key, 0.0)
            out[key] = value - prior if value >= prior else value
        return out

    if before is None:
        return after
    return Counters(one(before.calls, after.calls), one(before.attempts, after.attempts))


def total(counters: Iterable[Counters]) -> Counters:
    calls: dict[tuple[str, str], float] = defaultdict(float)
    attempts: dict[tuple[str, str], float] = defaultdict(float)
    for c in counters:
        for key, value in c.calls.items():
            calls[key] += value
        for key, value in c.attempts.items():
            attempts[key] += value
    return Counters(dict(calls), dict(attempts))


def class_window(name: str, window: Counters, methods: Iterable[str]) -> ClassWindow:
    wanted = {m.lstrip("/") for m in methods}
    calls = faults = 0.0
    for (method, code), n in window.calls.items():
        if method in wanted:
            calls += n
            faults += n if code in FAULT_CODES else 0.0
    return ClassWindow(name, calls, faults)


def sensitive_on_public(
    counters: Counters, public_clusters: Iterable[str], sensitive_methods: Iterable[str]
) -> float:
    """Attempts of SENSITIVE methods on public zones' clusters (0 is the only right answer)."""
    clusters = set(public_clusters)
    methods = {m.lstrip("/") for m in sensitive_methods}
    return sum(
        n
        for (cluster, method), n in counters.attempts.items()
        if cluster in clusters and method in methods
    )


def judge(
    classes: Iterable[ClassWindow],
    leaked: float,
    min_success_ratio: float,
    require_calls: bool,
) -> list[tuple[bool, str]]:
    """(ok, line) per check of the gateway's steady state."""
    lines = []
    for window in classes:
        ratio = window.success_ratio
        if ratio is None:
            what = "no calls in the window: not measured"
            lines.append((not require_calls, f"{window.name} success ratio: {what}"))
            continue
        lines.append(
            (
                ratio >= min_success_ratio,
                f"{window.name} success ratio {ratio:.6f} over {window.calls:.0f} calls "
                f"({window.faults:.0f} failed; at least {min_success_ratio} required)",
            )
        )
    lines.append((leaked == 0, f"SENSITIVE attempts on public clusters: {leaked:.0f}"))
    return lines


# ---- I/O --------------------------------------------------------------------------------


def check(address: str, timeout_s: float) -> str:
    """The server's overall health status name, or why it could not be read."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.RpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


def pod_addresses(host_port: str) -> list[str]:
    """host:port of every address the name resolves to (a headless Service: each ready pod)."""
    host, _, port = host_port.rpartition(":")
    infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    addresses = sorted({str(info[4][0]) for info in infos})
    return [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses]


def scrape(address: str, timeout_s: float) -> Counters:
    url = f"http://{address}/metrics"
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return parse(response.read().decode())


def scrape_pods(host_port: str, timeout_s: float) -> tuple[dict[str, Counters], set[str]]:
    """Every ready gateway pod's counters, and the pods whose counters could not be read."""
    out, unread = {}, set()
    for address in pod_addresses(host_port):
        try:
            out[address] = scrape(address, timeout_s)
        except OSError:
            unread.add(address)
    return out, unread


def gateway_checks(args: argparse.Namespace) -> list[tuple[bool, str]]:
    first, unread = scrape_pods(args.gateway_pods, args.timeout_s)
    print(f"watching {len(first)} gateway pod(s) for {args.window_s:g} s", flush=True)
    time.sleep(args.window_s)
    last, unread_last = scrape_pods(args.gateway_pods, args.timeout_s)
    checks = [(False, f"gateway pod {a}: metrics not read") for a in sorted(unread | unread_last)]
    judged = sorted(set(first) & set(last))
    if not judged:
        return [*checks, (False, "no gateway pod read at both ends of the window")]
    checks.append((True, f"gateway pods judged over the window: {len(judged)}"))
    late = sorted(set(last) - set(first))
    if late:  # ready only since the window began: its counters would be a lifetime's
        checks.append((True, f"gateway pods ready during the window, not judged: {late}"))
    window = total(increase(first[a], last[a]) for a in judged)
    classes = [
        class_window("PUBLIC", window, args.public_method),
        class_window("SENSITIVE", window, args.sensitive_method),
    ]
    leaked = sensitive_on_public(total(last.values()), args.public_cluster, args.sensitive_method)
    return checks + judge(classes, leaked, args.min_success_ratio, args.require_calls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--health", action="append", default=[], help="host:port")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="per server")
    parser.add_argument("--gateway-pods", default="", help="headless Service host:metricsPort")
    parser.add_argument("--window-s", type=float, default=30.0)
    parser.add_argument("--min-success-ratio", type=float, default=0.999)
    parser.add_argument("--require-calls", action="store_true")
    parser.add_argument("--public-method", action="append", default=[])
    parser.add_argument("--sensitive-method", action="append", default=[])
    parser.add_argument("--public-cluster", action="append", default=[])
    args = parser.parse_args(argv)
    if not args.health and not args.gateway_pods:
        parser.error("nothing to check: give --health and/or --gateway-pods")
    failed = 0
    for address in args.health:
        status = check(address, args.timeout_s)
        failed += status != "SERVING"
        print(f"{address:<40} {status}")
    if args.gateway_pods:
        for ok, line in gateway_checks(args):
            failed += not ok
            print(("ok        " if ok else "DEVIATED  ") + line)
    print("steady state: " + ("deviated" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
