"""Probes of the local platform: they only observe. Chaos Toolkit calls them with the keyword
arguments an experiment gives; each returns a number (or bool) its tolerance judges.

Window probes judge the calls the drill's steady load made in the last `window_s` seconds
(or, when the runner judges the fault, in the fault windows). A window with no calls of the
class asked for returns -1, which no tolerance of ours accepts: "not measured" never passes.
"""

from __future__ import annotations

import json
import time
from typing import Any

from chaos import context
from chaos.load import Window
from chaos.local.platform import DEFAULT_RUN_DIR, Platform
from chaos.verdict import percentile
from services.local.report import (
    all_gateway_attempts,
    leak_scan,
    sensitive_on_public,
    zone_of_clusters,
)
from services.local.supervisor import is_running

NOT_MEASURED = -1.0


def _window(sensitivity: str, window_s: float, method: str = "") -> Window:
    drill = context.current()
    start, end = drill.window(window_s)
    public = {"public": True, "sensitive": False, "any": None}[sensitivity]
    return drill.load.window(start, end, public, method)


def success_ratio(sensitivity: str = "public", window_s: float = 10.0, method: str = "") -> float:
    """Share of calls of `sensitivity` (public, sensitive, any; or of one `method`, e.g.
    "AdService/Rank") that succeeded, after the client's own retries, in the last `window_s`
    seconds (or the fault windows)."""
    ratio = _window(sensitivity, window_s, method).success_ratio
    return NOT_MEASURED if ratio is None else round(ratio, 6)


def failed_calls(sensitivity: str = "public", window_s: float = 10.0) -> int:
    """Calls of `sensitivity` that failed in the window (-1 if none were made)."""
    window = _window(sensitivity, window_s)
    return int(NOT_MEASURED) if window.total == 0 else window.total - window.ok


def failure_codes_only(
    codes: list[str], sensitivity: str = "sensitive", window_s: float = 10.0
) -> bool:
    """True when every failed call of `sensitivity` in the window ended with one of `codes`
    (e.g. only UNAVAILABLE: failing closed, not hanging into DEADLINE_EXCEEDED)."""
    window = _window(sensitivity, window_s)
    return all(code == "OK" or code in codes for code in window.codes)


def slowest_failure_ms(sensitivity: str = "sensitive", window_s: float = 10.0) -> float:
    """The longest a failed call of `sensitivity` took in the window (0 when none failed):
    how fast the platform fails."""
    drill = context.current()
    start, end = drill.window(window_s)
    public = sensitivity == "public"
    slow = [
        c.latency_s
        for c in list(drill.load.calls)
        if start <= c.t_s < end and c.public == public and c.code != "OK"
    ]
    return round(max(slow, default=0.0) * 1000, 1)


def latency_p99_ms(sensitivity: str = "public", window_s: float = 10.0, method: str = "") -> float:
    """p99 latency (ms) of successful calls of `sensitivity` (or of one `method`) in the
    window."""
    window = _window(sensitivity, window_s, method)
    if not window.latencies_s:
        return NOT_MEASURED
    return round(percentile([x * 1000 for x in window.latencies_s], 99), 1)


def degraded_answers(window_s: float = 10.0) -> int:
    """Rank calls answered by the gateway's bid-only fallback in the window."""
    return _window("public", window_s).degraded


def degraded_share(window_s: float = 10.0) -> float:
    """Share of Rank answers in the window that were the gateway's bid-only fallback."""
    drill = context.current()
    start, end = drill.window(window_s)
    ranks = [
        c
        for c in list(drill.load.calls)
        if start <= c.t_s < end and c.method == "AdService/Rank" and c.code == "OK"
    ]
    if not ranks:
        return NOT_MEASURED
    return round(sum(c.degraded for c in ranks) / len(ranks), 6)


def noncompliant_answers(window_s: float = 10.0) -> int:
    """Degraded Rank answers in the window that broke the rules file (shown an ad the
    ranking service's compliance or exclusion rules forbid for that request)."""
    return _window("public", window_s).noncompliant


def sensitive_attempts_on_public_clusters(run_dir: str = DEFAULT_RUN_DIR) -> float:
    """Attempts the gateway instances made of SENSITIVE methods on public clusters."""
    platform = Platform.load(run_dir)
    host = platform.state.gateway.rsplit(":", 1)[0]
    attempts = all_gateway_attempts(platform.run_dir, host)
    return sensitive_on_public(attempts, zone_of_clusters(platform.run_dir))


def gateway_attempts_on(zone: str, run_dir: str = DEFAULT_RUN_DIR) -> float:
    """Attempts the gateway instances made on clusters of `zone` since they started."""
    platform = Platform.load(run_dir)
    host = platform.state.gateway.rsplit(":", 1)[0]
    zones = zone_of_clusters(platform.run_dir)
    attempts = all_gateway_attempts(platform.run_dir, host)
    return sum(n for (cluster, _), n in attempts.items() if zones.get(cluster, ("",))[0] == zone)


def zone_status(zone: str, run_dir: str = DEFAULT_RUN_DIR) -> dict[str, Any]:
    """The ranking service's status file of `zone` (replicas by state, endpoints published)."""
    platform = Platform.load(run_dir)
    for spec in platform.topology.zone(zone).services:
        path = platform.run_dir / f"{spec.name}.status.json"
        if path.exists():
            status: dict[str, Any] = json.loads(path.read_text())
            status["age_s"] = time.time() - float(status.get("time_unix_s", 0))
            return status
    raise RuntimeError(f"zone {zone} has no ranking status file in {platform.run_dir}")


def running_replicas(zone: str = "public-a", run_dir: str = DEFAULT_RUN_DIR) -> int:
    """Ranking replicas RUNNING in `zone`, as Serve reports them."""
    return int(zone_status(zone, run_dir).get("replicas", {}).get("RUNNING", 0))


def replicas_settled(zone: str = "public-a", run_dir: str = DEFAULT_RUN_DIR) -> bool:
    """Serve's deployment is HEALTHY, every replica RUNNING, and all of them published."""
    status = zone_status(zone, run_dir)
    replicas = status.get("replicas", {})
    running = int(replicas.get("RUNNING", 0))
    return (
        status.get("deployment_status", "HEALTHY") == "HEALTHY"
        and running > 0
        and running == sum(int(n) for n in replicas.values())
        and int(status.get("endpoints", 0)) == running
        and status["age_s"] < 10
    )


def processes_not_running(run_dir: str = DEFAULT_RUN_DIR) -> int:
    """Supervised processes that are not running (restarting, backing off or dead)."""
    platform = Platform.load(run_dir)
    return sum(
        1 for p in platform.state.processes if p.status != "running" or not is_running(p.pid)
    )


def orders_not_exactly_once(run_dir: str = DEFAULT_RUN_DIR) -> int:
    """Acknowledged orders of the drill's load that are not in the private database exactly
    once under their idempotency key with the acknowledged id (0 = reconciled). Reads
    SQLite read-only, or PostgreSQL over its Unix socket (any namespace reaches it)."""
    import sqlalchemy as sa

    drill = context.current()
    keys = dict(drill.load.orders)
    if not keys:
        return 0
    engine = sa.create_engine(_private_database_url(Platform.load(run_dir)), poolclass=sa.NullPool)
    query = sa.text(
        "SELECT idempotency_key, order_id FROM orders WHERE idempotency_key IN :keys"
    ).bindparams(sa.bindparam("keys", expanding=True))
    rows: dict[str, list[str]] = {}
    try:
        with engine.connect() as db:
            for key, order_id in db.execute(query, {"keys": list(keys)}):
                rows.setdefault(key, []).append(order_id)
    finally:
        engine.dispose()
    return sum(1 for key, order_id in keys.items() if rows.get(key) != [order_id])


def public_pii_findings(run_dir: str = DEFAULT_RUN_DIR) -> int:
    """Values in every public-zone file that look like personal data or are the drill's
    shoppers' e-mails, phones or private ids (0 = nothing leaked)."""
    drill = context.current()
    return int(leak_scan(Platform.load(run_dir).run_dir, drill.load.shoppers)["problem_count"])


def _private_database_url(platform: Platform) -> str:
    if platform.postgres is not None:
        return platform.postgres.observer_url()
    import yaml

    doc = yaml.safe_load((platform.run_dir / "private.yaml").read_text())
    url = str(doc["database_url"])
    if not url.startswith("sqlite:///"):
        raise RuntimeError(
            f"order reconciliation reads SQLite or the local PostgreSQL, not {url.split(':')[0]}"
        )
    return f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"


def events_not_exactly_once(run_dir: str = DEFAULT_RUN_DIR) -> int:
    """Events the drill's load had acknowledged (Track OK) before the last sync run started
    that are not in the private warehouse exactly once: missing ones plus extra copies
    (0 = reconciled). Reads the warehouse's committed files only (its `_spark_metadata`
    log), never a directory listing: a killed batch leaves orphan files there."""
    import pyarrow.parquet as pq

    from ray_jobs.sync.config import Locations
    from ray_jobs.sync.sinklog import live_files

    drill = context.current()
    if drill.sync_cutoff is None:
        raise RuntimeError("no sync run in this drill: run chaos.local.sync.run_sync first")
    acknowledged = {e for e, t in drill.load.events.items() if t < drill.sync_cutoff}
    platform = Platform.load(run_dir)
    sink = Locations.from_spec(platform.topology.data).events.path
    seen: dict[str, int] = {}
    for part in live_files(sink):
        for event_id in pq.read_table(part, columns=["event_id"]).column(0).to_pylist():
            if event_id in acknowledged:
                seen[event_id] = seen.get(event_id, 0) + 1
    missing = len(acknowledged - set(seen))
    extra = sum(n - 1 for n in seen.values())
    drill.event(
        f"reconciled {len(acknowledged)} acknowledged events: {missing} missing, "
        f"{extra} extra copies"
    )
    return missing + extra
