"""The demo's evidence and its report: calls by route and zone (from the gateway's own
counters), latency percentiles, replicas over time, events synced, and two leak checks --
no SENSITIVE call attempted on a public cluster, no personal data in any public-zone file."""

from __future__ import annotations

import json
import re
import statistics
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ray_jobs.sync.scan import findings
from services.contract.descriptors import load_descriptor_set, method_table

SCAN_PASSES = 5
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>.*)\})?\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def gateway_attempts(metrics_url: str) -> dict[tuple[str, str], float]:
    """(cluster, method) -> attempts, from the gateway's Prometheus endpoint."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:  # noqa: S310 (our own)
        text = response.read().decode()
    out: dict[tuple[str, str], float] = defaultdict(float)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or not match["name"].startswith("isthmus_gateway_attempts"):
            continue
        if not match["name"].endswith("_total"):
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        out[(labels.get("cluster", "?"), labels.get("rpc_method", "?"))] += float(match["value"])
    return dict(out)


def zone_of_clusters(run_dir: Path) -> dict[str, tuple[str, str]]:
    """cluster (service) name -> (zone, zone kind), from the runtime topology."""
    doc = yaml.safe_load((run_dir / "topology.yaml").read_text())
    return {s["name"]: (z["name"], z["kind"]) for z in doc["zones"] for s in z["services"]}


def sensitive_on_public(
    attempts: dict[tuple[str, str], float], zones: dict[str, tuple[str, str]]
) -> float:
    table = method_table(load_descriptor_set())
    sensitive = {path for path, info in table.items() if info.is_sensitive}
    return sum(
        n
        for (cluster, method), n in attempts.items()
        if zones.get(cluster, ("?", "public"))[1] == "public" and method in sensitive
    )


def public_files(run_dir: Path) -> list[Path]:
    doc = yaml.safe_load((run_dir / "topology.yaml").read_text())
    data = doc.get("data", {})
    roots = [
        Path(data.get("landing_uri", "var/public/landing")),
        Path(data.get("features_uri", "var/public/features")),
    ]
    return [p for root in roots if root.exists() for p in sorted(root.rglob("*")) if p.is_file()]


def _values(path: Path) -> Iterable[object]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        yield from table.column_names
        for column in table.columns:
            yield from column.to_pylist()
    elif path.suffix == ".json":
        yield from _walk(json.loads(path.read_text()))
    elif path.suffix == ".db":
        yield from _sqlite_values(path)
    elif path.name.endswith((".db-wal", ".db-shm", ".db-journal")):
        return  # SQLite's own pages: their rows are read through the database above
    else:
        text = path.read_text(errors="replace")
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                yield line
                continue
            if isinstance(record, dict):
                yield from record.keys()
                yield from record.values()
            else:
                yield line


def _sqlite_values(path: Path) -> Iterable[object]:
    """Every table name, column name and value of a SQLite file (read-only)."""
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            yield table
            cursor = db.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from the file)
            yield from (d[0] for d in cursor.description)
            for row in cursor:
                yield from row
    finally:
        db.close()


def _walk(node: object) -> Iterable[object]:
    """Every key and leaf value of a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)
    else:
        yield node


def leak_scan(run_dir: Path, shoppers: list[Any]) -> dict[str, Any]:
    """Every public-zone file, every value: nothing that looks like an e-mail or phone
    number, and none of the private zone's identifiers or the shoppers' raw contacts."""
    forbidden = set()
    for shopper in shoppers:
        forbidden.update({shopper.email, shopper.phone, shopper.unified_id})
    forbidden.discard("")
    # The platform keeps running during a drill: the event service renames a batch's file
    # from `_incoming/` into its partition, and pruning deletes landed ones. A file gone
    # between the listing and its read is looked for again in a fresh listing (a renamed
    # one is found where it went); files already read are not read twice.
    scanned: set[Path] = set()
    problems: list[str] = []
    for _ in range(SCAN_PASSES):
        vanished = False
        for path in public_files(run_dir):
            if path in scanned:
                continue
            try:
                values = list(_values(path))
            except FileNotFoundError:
                vanished = True
                continue
            scanned.add(path)
            problems += [f"{path}: {problem}" for problem in findings(values, forbidden)]
        if not vanished:
            break
    else:
        raise RuntimeError(f"public-zone files kept moving through {SCAN_PASSES} scans")
    return {
        "files_scanned": len(scanned),
        "problems": problems[:20],
        "problem_count": len(problems),
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def write_report(
    report_dir: Path,
    run_dir: Path,
    settings: Any,
    log: Any,
    timeline: list[dict[str, Any]],
    synced: dict[str, Any],
    exported: dict[str, Any],
    leaks: dict[str, Any],
) -> dict[str, Any]:
    report_dir.mkdir(parents=True, exist_ok=True)
    zones = zone_of_clusters(run_dir)
    state = json.loads((run_dir / "state.json").read_text())
    attempts = all_gateway_attempts(run_dir, state["gateway"].rsplit(":", 1)[0])
    sensitive_public = sensitive_on_public(attempts, zones)
    by_method = {}
    for method, codes in sorted(log.codes.items()):
        lat = [x * 1000 for x in log.latencies.get(method, [])]
        by_method[method] = {
            "calls": sum(codes.values()),
            "ok": codes.get("OK", 0),
            "errors": {k: v for k, v in codes.items() if k != "OK"},
            "p50_ms": round(statistics.median(lat), 2) if lat else None,
            "p99_ms": round(_percentile(lat, 0.99), 2) if lat else None,
        }
    by_zone: dict[str, float] = defaultdict(float)
    for (cluster, _method), n in attempts.items():
        by_zone[zones.get(cluster, (cluster, "?"))[0]] += n
    ok, failed = log.totals()
    summary = {
        "settings": settings.__dict__,
        "calls": {"ok": ok, "failed": failed},
        "by_method": by_method,
        "gateway_attempts_by_zone": dict(by_zone),
        "gateway_attempts_by_cluster_method": {
            f"{c} {m}": n for (c, m), n in sorted(attempts.items())
        },
        "sensitive_attempts_on_public_clusters": sensitive_public,
        "rank_default_features": log.degraded,
        "rank_bid_only": log.bid_only,
        "model_versions": dict(log.model_versions),
        "replicas": {
            "min": min((r["replicas"] for r in timeline), default=0),
            "max": max((r["replicas"] for r in timeline), default=0),
        },
        "events_accepted": log.events_accepted,
        "sync_events": synced,
        "export_features": exported,
        "pii_scan": leaks,
        "timeline": timeline,
    }
    (report_dir / "demo.json").write_text(json.dumps(summary, indent=1, default=str))
    _chart(timeline, report_dir / "demo.png")
    (report_dir / "demo.md").write_text(_markdown(summary))
    return summary


def metrics_urls(run_dir: Path, host: str) -> list[str]:
    """The Prometheus endpoint of every gateway instance (gateway.yaml or gateway-N.yaml)."""
    urls = []
    for path in sorted(run_dir.glob("gateway*.yaml")):
        doc = yaml.safe_load(path.read_text())
        port = int(doc["server"]["telemetry"]["prometheus_listen"]["port"])
        urls.append(f"http://{host}:{port}/metrics")
    return urls


def all_gateway_attempts(run_dir: Path, host: str) -> dict[tuple[str, str], float]:
    """Attempts by (cluster, method), summed over the gateway instances. An instance that
    restarted counts from zero again (Prometheus counters reset with the process)."""
    total: dict[tuple[str, str], float] = defaultdict(float)
    for url in metrics_urls(run_dir, host):
        for key, n in gateway_attempts(url).items():
            total[key] += n
    return dict(total)


def _chart(timeline: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t_s"] for r in timeline]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    top.plot(t, [r["calls_per_s"] for r in timeline], label="calls/s (through the gateway)")
    top.plot(t, [r["visits_per_s"] for r in timeline], "--", label="target visits/s")
    top.set_ylabel("rate")
    twin = top.twinx()
    twin.step(
        t, [r["replicas"] for r in timeline], where="post", color="tab:green", label="replicas"
    )
    twin.set_ylabel("ranking replicas", color="tab:green")
    top.legend(loc="upper left")
    top.set_title("isthmus peak-season demo")
    bottom.plot(t, [r["p50_ms"] for r in timeline], label="p50 ms")
    bottom.plot(t, [r["p99_ms"] for r in timeline], label="p99 ms")
    bottom.bar(t, [r["errors"] for r in timeline], color="tab:red", label="errors", width=0.8)
    bottom.set_xlabel("seconds into the day")
    bottom.set_ylabel("latency (ms) / errors")
    bottom.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _markdown(s: dict[str, Any]) -> str:
    lines = [
        "# isthmus peak-season demo",
        "",
        f"Calls through the gateway: **{s['calls']['ok']} ok, {s['calls']['failed']} failed**.",
        f"Ranking replicas: {s['replicas']['min']} -> {s['replicas']['max']} (autoscaled).",
        "SENSITIVE call attempts on public clusters: "
        f"**{s['sensitive_attempts_on_public_clusters']:g}**.",
        f"Public-zone files scanned for personal data: {s['pii_scan']['files_scanned']}, "
        f"problems: **{s['pii_scan']['problem_count']}**.",
        f"Events accepted by EventService: {s['events_accepted']}; landing lines synced to the "
        f"warehouse this run: {s['sync_events'].get('landing_lines')}.",
        f"Feature snapshot published: {s['export_features'].get('version', s['export_features'])}.",
        f"Rank answers scored on default features (no snapshot yet): "
        f"{s['rank_default_features']}; bid-only answers from the gateway: {s['rank_bid_only']}; "
        f"model versions: {s['model_versions']}.",
        "",
        "## Calls by route (client side)",
        "",
        "| route | calls | ok | errors | p50 ms | p99 ms |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for method, m in s["by_method"].items():
        lines.append(
            f"| {method} | {m['calls']} | {m['ok']} | {m['errors'] or '-'} "
            f"| {m['p50_ms']} | {m['p99_ms']} |"
        )
    lines += ["", "## Gateway attempts by zone", "", "| zone | attempts |", "|---|---:|"]
    for zone, n in sorted(s["gateway_attempts_by_zone"].items()):
        lines.append(f"| {zone} | {n:g} |")
    lines += ["", "![timeline](demo.png)", ""]
    return "\n".join(lines)
