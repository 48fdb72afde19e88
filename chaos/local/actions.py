"""Actions on the local platform: they change things. Each fault records itself on the drill
(events, fault window) and registers how to undo it, so `restore_platform` -- every drill's
rollback -- can put the platform back even when the method was cut short.

Targets are what `isthmus up` started (RUN_DIR/state.json and plan.json): supervised
processes (Ray nodes, services, gateway instances), Serve replica processes under the Ray
nodes, and the veth links between the gateway's and the zones' namespaces.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import yaml

from chaos import context
from chaos.load import ramped_rate
from chaos.local.platform import (
    DEFAULT_RUN_DIR,
    Platform,
    count_for,
    gateway_config_files,
    in_namespace,
    ip,
    link_is_up,
    raylet_pid,
    replica_pids,
)
from chaos.local.probes import replicas_settled, running_replicas, zone_status
from services.local.supervisor import hold_path, is_running


def kill_ray_worker_nodes(
    zone: str = "public-a", percent: float = 30.0, run_dir: str = DEFAULT_RUN_DIR
) -> dict[str, Any]:
    """SIGKILL `percent` % (rounded up) of `zone`'s Ray worker nodes -- each node's raylet and
    every worker it started, replicas included -- preferring nodes that host replicas. The
    supervisor starts the nodes again (their `ray start` exits), as a cluster replaces lost
    machines. Returns what was killed."""
    drill = context.current()
    nodes = Platform.load(run_dir).processes(kind="ray-worker", zone=zone)
    if not nodes:
        raise RuntimeError(f"zone {zone} has no Ray worker nodes (multi-node zones only)")
    ranked = sorted(nodes, key=lambda n: -len(replica_pids(n.pid)))
    victims = ranked[: count_for(percent, len(nodes))]
    killed: dict[str, Any] = {}
    drill.fault_begins(f"SIGKILL {len(victims)}/{len(nodes)} Ray worker nodes of {zone}")
    for node in victims:
        drill.restarts_expected[node.name] = node.restarts
        raylet = raylet_pid(node.pid)
        replicas = replica_pids(node.pid)
        pids = [p for p in [raylet, *replicas] if p]
        for pid in pids:
            _kill(pid)
        killed[node.name] = {"raylet": raylet, "replicas": replicas}
        drill.event(f"killed {node.name} (raylet {raylet}, {len(replicas)} replica(s))")
    return killed


def kill_replicas(
    zone: str = "public-a",
    percent: float = 30.0,
    burst: int = 0,
    freeze_s: float = 0.0,
    run_dir: str = DEFAULT_RUN_DIR,
) -> list[int]:
    """SIGKILL `percent` % (rounded up) of `zone`'s ranking replica processes; Serve's
    controller starts replacements. With `burst`, every caller of the drill's load starts
    that many calls at once just before the kill. With `freeze_s`, the victims are stopped
    (SIGSTOP) first and killed that long after the burst: the calls sent to them meanwhile
    are in flight when they die -- a replica that hangs, then dies. (A replica answers Rank
    in a few ms: a plain kill, even after a burst, rarely catches a call on it, and only a
    call in flight needs the gateway's retry.)"""
    drill = context.current()
    nodes = Platform.load(run_dir).processes(zone=zone)
    replicas = sorted(
        pid for node in nodes if node.kind.startswith("ray") for pid in replica_pids(node.pid)
    )
    if not replicas:
        raise RuntimeError(f"no ranking replica processes found in {zone}")
    victims = replicas[: count_for(percent, len(replicas))]
    what = f"SIGKILL {len(victims)}/{len(replicas)} ranking replicas of {zone}"
    if freeze_s:
        for pid in victims:
            _signal(pid, signal.SIGSTOP)
        drill.fault_begins(f"{what}: stopped, then killed {freeze_s:g} s after a burst")
        _burst(drill, burst, freeze_s)
    else:
        _burst(drill, burst)
        drill.fault_begins(what + (f", {burst} calls per caller just started" if burst else ""))
    for pid in victims:
        _kill(pid)
    return victims


def _burst(drill: Any, calls_per_caller: int, lead_s: float = 0.01) -> None:
    """Peak concurrency `lead_s` before a kill: the calls are on the wire, not yet answered."""
    if calls_per_caller:
        drill.load.burst(calls_per_caller)
        time.sleep(lead_s)


def kill_gateway_instance(instance: int = 0, burst: int = 0, run_dir: str = DEFAULT_RUN_DIR) -> int:
    """SIGKILL gateway instance `instance` (1-based; 0 = the one holding the most client
    connections right now, so the drill's callers feel it); the others keep the shared
    address and the supervisor starts it again. With `burst`, every caller of the drill's
    load starts that many calls at once just before the kill, so calls are in flight on
    the instance when it dies (at a steady few dozen calls/s a kill often catches none).
    Returns the PID killed."""
    drill = context.current()
    platform = Platform.load(run_dir)
    gateways = platform.processes(kind="gateway")
    if len(gateways) < 2:
        raise RuntimeError("only one gateway instance: killing it would close the door")
    if instance:
        victim = gateways[instance - 1]
    else:
        held = connections_by_pid(platform)
        victim = max(gateways, key=lambda g: held.get(g.pid, 0))
        drill.event(f"client connections per gateway pid: {held}")
    _burst(drill, burst)
    drill.fault_begins(
        f"SIGKILL {victim.name} (pid {victim.pid})"
        + (f", {burst} calls per caller just started" if burst else "")
    )
    drill.restarts_expected[victim.name] = victim.restarts
    _kill(victim.pid)
    return victim.pid


def connections_by_pid(platform: Platform) -> dict[int, int]:
    """Established connections to the gateway's port, by the PID of the instance holding
    them (`ss` inside the gateway's namespace)."""
    import re
    import subprocess

    port = platform.state.gateway.rsplit(":", 1)[1]
    prefix = [] if platform.net is None else ["ip", "netns", "exec", platform.net.gateway_ns]
    out = subprocess.run(  # noqa: S603 (fixed tool, our own namespace and port)
        [*prefix, "ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    counts: dict[int, int] = {}
    for pid in re.findall(r"pid=(\d+)", out):
        counts[int(pid)] = counts.get(int(pid), 0) + 1
    return counts


def take_zone_out(zone: str = "public-a", run_dir: str = DEFAULT_RUN_DIR) -> str:
    """Take all of `zone` out: its link to the gateway goes down (zones in namespaces), or
    every process of the zone is frozen with SIGSTOP (loopback runs)."""
    drill = context.current()
    platform = Platform.load(run_dir)
    if platform.net is not None:
        link = platform.zone_link(zone)
        ip("-n", link.near_ns or "", "link", "set", link.near_if, "down")
        drill.undo[f"link:{zone}"] = lambda: _link_up(run_dir, zone)
        how = f"link {link.near_if} down"
    else:
        pids = [p.pid for p in platform.processes(zone=zone)]
        frozen = [pid for p in pids for pid in [p, *_tree(p)]]
        for pid in frozen:
            _signal(pid, signal.SIGSTOP)

        def thaw() -> None:
            for pid in frozen:
                _signal(pid, signal.SIGCONT)

        drill.undo[f"frozen:{zone}"] = thaw
        how = f"{len(frozen)} processes frozen"
    drill.fault_begins(f"{zone} out ({how})")
    return how


def bring_zone_back(zone: str = "public-a", run_dir: str = DEFAULT_RUN_DIR) -> None:
    """Undo take_zone_out for `zone`."""
    drill = context.current()
    drill.undo_now(f"link:{zone}", f"frozen:{zone}")
    drill.fault_ends(f"{zone} back")


def cut_private_link(run_dir: str = DEFAULT_RUN_DIR) -> str:
    """Cut the gateway <-> private zone link (zones in namespaces only)."""
    platform = Platform.load(run_dir)
    private = [z.name for z in platform.topology.zones if z.kind.value == "private"]
    return take_zone_out(private[0], run_dir)


def heal_private_link(run_dir: str = DEFAULT_RUN_DIR) -> None:
    """Undo cut_private_link."""
    platform = Platform.load(run_dir)
    private = [z.name for z in platform.topology.zones if z.kind.value == "private"]
    bring_zone_back(private[0], run_dir)


def hold(seconds: float = 10.0) -> float:
    """Keep the fault (and the load) going for `seconds`."""
    time.sleep(seconds)
    return seconds


def wait_until_recovered(
    zone: str = "public-a", timeout_s: float = 120.0, run_dir: str = DEFAULT_RUN_DIR
) -> float | None:
    """Wait until every supervised process runs again and `zone`'s replicas are settled
    (HEALTHY, all RUNNING, all published); ends the fault window and returns the time to
    recover, counted from the start of the fault. With the supervisor's restarts switched
    off, waits for the replicas only and returns None: what died stays down, and the
    steady-state probes judge that."""
    drill = context.current()
    start = drill.fault_windows[-1][0] if drill.fault_windows else drill.now()
    fault_unix = time.time() - (drill.now() - float(start or 0.0))
    no_restarts = "restarts" in drill.switched_off
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        platform = Platform.load(run_dir)
        down = [p.name for p in platform.state.processes if not is_running(p.pid)]
        up = not down and all(p.status == "running" for p in platform.state.processes)
        restarted = all(
            platform.state.process(name).restarts > before
            for name, before in drill.restarts_expected.items()
        )
        fresh = zone_status(zone, run_dir)["time_unix_s"] > fault_unix + 1.0
        if (no_restarts or (up and restarted)) and fresh and replicas_settled(zone, run_dir):
            if no_restarts and down:
                drill.fault_ends(f"replicas settled; not restarted (restarts off): {down}")
                return None
            drill.recovery_s = round(drill.now() - float(start or 0.0), 1)
            drill.fault_ends(f"recovered in {drill.recovery_s:.1f}s")
            return drill.recovery_s
        time.sleep(0.5)
    drill.fault_ends(f"not recovered within {timeout_s:.0f}s")
    raise RuntimeError(f"{zone} did not recover within {timeout_s:.0f}s")


def restore_platform(timeout_s: float = 180.0, run_dir: str = DEFAULT_RUN_DIR) -> list[str]:
    """Every drill's rollback: undo what the drill changed (links up, frozen processes
    resumed, gateway settings back), then wait until every supervised process runs.
    Returns what was undone."""
    drill = context.current()
    undone = []
    for key, undo in list(drill.undo.items()):
        try:
            undo()
            undone.append(key)
        finally:
            drill.undo.pop(key, None)
    drill.fault_ends()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        platform = Platform.load(run_dir)
        if all(p.status == "running" and is_running(p.pid) for p in platform.state.processes):
            return undone
        time.sleep(0.5)
    raise RuntimeError(f"not every process was running again within {timeout_s:.0f}s")


# ---- protections, switched off to show a drill can fail --------------------------------
GATEWAY_SETTINGS_OFF: dict[str, dict[str, Any]] = {
    # No retries or failover attempts at all: the budget allows none (the drill's callers
    # stop retrying too: see runner.run_drill).
    "retries": {"retry_budget": {"budget_percent": 0.0, "min_retry_concurrency": 0}},
    # Envoy's default: at most 10% of a cluster ejected at once.
    "ejection": {"outlier": {"max_ejection_percent": 10}},
}


def switch_off_protection(protection: str, run_dir: str = DEFAULT_RUN_DIR) -> None:
    """Reconfigure every gateway instance without `protection` (retries, ejection or
    failover), one instance at a time; the rollback switches it back on."""
    drill = context.current()
    platform = Platform.load(run_dir)
    files = gateway_config_files(platform.run_dir)
    originals = {path: path.read_text() for path in files}
    for path in files:
        doc = yaml.safe_load(path.read_text())
        doc.update(protection_off(protection, platform))
        path.write_text(yaml.safe_dump(doc, sort_keys=False))

    def restore() -> None:
        for path, text in originals.items():
            path.write_text(text)
        reload_gateways(run_dir)

    drill.undo[f"protection:{protection}"] = restore
    reload_gateways(run_dir)
    drill.event(f"protection off: {protection}")


def protection_off(protection: str, platform: Platform) -> dict[str, Any]:
    """The gateway config fields that switch `protection` off (pure)."""
    if protection in GATEWAY_SETTINGS_OFF:
        return dict(GATEWAY_SETTINGS_OFF[protection])
    if protection == "failover":
        from services.gateway.config import from_topology

        first = {z.name for z in platform.topology.public_zones()[:1]}
        zone_of = {s.name: z.name for z in platform.topology.zones for s in z.services}
        routes = []
        for route in from_topology(platform.topology).routes:
            kept = [
                c
                for c in route.clusters
                if zone_of[c] in first
                or zone_of[c] not in {z.name for z in platform.topology.public_zones()}
            ]
            routes.append(route.model_copy(update={"clusters": kept}).model_dump(mode="json"))
        return {"routes": routes}
    if protection in {"per-try-timeout", "fallback"}:
        # No per-try timeout: a hanging attempt then holds the call until the caller's own
        # deadline. No fallback: a Rank call the model cannot answer in time fails instead
        # of being answered bid-only.
        from services.gateway.config import from_topology

        off: dict[str, Any] = (
            {"per_try_timeout_s": None} if protection == "per-try-timeout" else {"fallback": "none"}
        )
        return {
            "routes": [
                r.model_copy(update=off).model_dump(mode="json")
                for r in from_topology(platform.topology).routes
            ]
        }
    raise ValueError(
        f"unknown protection {protection!r}; known: retries, ejection, failover, "
        "per-try-timeout, fallback"
    )


def switch_off_restarts(run_dir: str = DEFAULT_RUN_DIR) -> None:
    """The supervisor restarts nothing that exits during this drill (as if the workloads had
    no controller): a hold file for every supervised process. The rollback removes them, and
    the supervisor then restarts what died."""
    drill = context.current()
    platform = Platform.load(run_dir)
    holds = [hold_path(platform.run_dir, p.name) for p in platform.state.processes]
    made = [h for h in holds if not h.exists()]
    for hold_file in made:
        hold_file.parent.mkdir(parents=True, exist_ok=True)
        hold_file.touch()

    def restore() -> None:
        for hold_file in made:
            hold_file.unlink(missing_ok=True)
        drill.switched_off.discard("restarts")

    drill.undo["protection:restarts"] = restore
    drill.switched_off.add("restarts")
    drill.event("protection off: restarts (the supervisor restarts nothing)")


def reload_gateways(run_dir: str = DEFAULT_RUN_DIR, timeout_s: float = 30.0) -> None:
    """Every gateway instance rereads its config file (SIGHUP, one at a time), without a
    restart; returns once each has logged the outcome, and raises if one refused it."""
    platform = Platform.load(run_dir)
    for process in platform.processes(kind="gateway"):
        log = platform.run_dir / "logs" / f"{process.name}.log"
        seen = _reload_lines(log)
        _signal(process.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout_s
        while len(lines := _reload_lines(log)) == len(seen):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{process.name} did not reload within {timeout_s:.0f}s")
            time.sleep(0.05)
        if "refused" in lines[-1]:
            raise RuntimeError(f"{process.name}: {lines[-1]}")


def _reload_lines(log: Path) -> list[str]:
    """The lines a gateway logs when a SIGHUP reload succeeds or is refused."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text.splitlines() if "SIGHUP: configuration" in line]


def _link_up(run_dir: str, zone: str) -> None:
    link = Platform.load(run_dir).zone_link(zone)
    ip("-n", link.near_ns or "", "link", "set", link.near_if, "up")
    if not link_is_up(link.near_ns, link.near_if):
        raise RuntimeError(f"link {link.near_if} of {zone} did not come back up")


def _tree(pid: int) -> list[int]:
    from chaos.local.platform import descendants

    return descendants(pid)


def _kill(pid: int) -> None:
    _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def wait_until_sensitive_recovers(timeout_s: float = 60.0) -> float:
    """After a heal: wait until SENSITIVE calls succeed again (3 s without a failure) and
    report how long that took from the heal."""
    drill = context.current()
    healed = drill.now()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = drill.now()
        recent = drill.load.window(now - 3.0, now + 1e-6, public=False)
        if recent.total and recent.ok == recent.total and now - healed >= 3.0:
            first_ok = min(
                (
                    c.t_s
                    for c in list(drill.load.calls)
                    if not c.public and c.code == "OK" and c.t_s >= healed
                ),
                default=now,
            )
            drill.recovery_s = round(first_ok - healed, 1)
            drill.event(f"SENSITIVE calls succeed again {drill.recovery_s:.1f}s after the heal")
            return drill.recovery_s
        time.sleep(0.5)
    raise RuntimeError(f"SENSITIVE calls did not recover within {timeout_s:.0f}s of the heal")


def wait_for_replicas(
    zone: str = "public-a",
    at_least: int = 2,
    timeout_s: float = 120.0,
    ramp_every_s: float = 20.0,
    ramp_factor: float = 1.5,
    max_load_factor: float = 4.0,
    run_dir: str = DEFAULT_RUN_DIR,
) -> int:
    """Before a fault: bring `zone` to `at_least` running replicas by load alone (a 30% loss
    of one replica would be a zone loss, another drill), and return the count.

    Whether the drill's rate is enough depends on how fast this machine ranks (Serve scales
    on the share of time a replica spends ranking), so every `ramp_every_s` without enough
    replicas the offered load is raised by `ramp_factor`, up to `max_load_factor` x the
    drill's rate; it stays raised for the rest of the drill, so Serve has no reason to
    scale back down before the fault."""
    drill = context.current()
    base_rps = drill.load.rps
    started = time.monotonic()
    while (waited := time.monotonic() - started) < timeout_s:
        running = running_replicas(zone, run_dir)
        if running >= at_least and replicas_settled(zone, run_dir):
            drill.event(f"{zone} at {running} replicas under {drill.load.rps:g} load rounds/s")
            return running
        rate = ramped_rate(base_rps, waited, ramp_every_s, ramp_factor, max_load_factor)
        if rate != drill.load.rps:
            drill.load.rps = rate
            drill.event(f"{zone} at {running} replica(s): load raised to {rate:g} rounds/s")
        time.sleep(0.5)
    raise RuntimeError(
        f"{zone} did not reach {at_least} replicas within {timeout_s:.0f}s "
        f"(load up to {drill.load.rps:g} rounds/s)"
    )


# ---- packet loss on a zone's link ---------------------------------------------------------
NFT_TABLE = "isthmus_chaos"


def drop_packets(zone: str = "public-a", percent: int = 10, run_dir: str = DEFAULT_RUN_DIR) -> str:
    """Drop `percent` % of the packets each way on the link between the gateway and `zone`
    (nftables `numgen random` rules in the gateway's namespace; this kernel has no netem).
    Needs zones in namespaces."""
    drill = context.current()
    link = Platform.load(run_dir).zone_link(zone)
    namespace = link.near_ns or ""
    out_rule = f'oifname "{link.near_if}" numgen random mod 100 < {percent} drop'
    in_rule = f'iifname "{link.near_if}" numgen random mod 100 < {percent} drop'
    script = "\n".join(
        [
            f"add table inet {NFT_TABLE}",
            f"add chain inet {NFT_TABLE} out {{ type filter hook output priority 0 ; }}",
            f"add chain inet {NFT_TABLE} in {{ type filter hook input priority 0 ; }}",
            f"add rule inet {NFT_TABLE} out {out_rule}",
            f"add rule inet {NFT_TABLE} in {in_rule}",
        ]
    )
    in_namespace(namespace, "nft", "-f", "-", stdin=script)
    drill.undo[f"nft:{zone}"] = lambda: _drop_table(namespace)
    drill.fault_begins(f"{percent}% packet loss each way on the link to {zone}")
    return f"{link.near_if}: {percent}%"


def stop_dropping(zone: str = "public-a", run_dir: str = DEFAULT_RUN_DIR) -> None:
    """Undo drop_packets. A fault still on the link (latency) keeps a window of its own open
    until it is removed: calls that fail then count as failing during a fault."""
    drill = context.current()
    drill.undo_now(f"nft:{zone}")
    ended = f"packet loss on the link to {zone} ended"
    if f"latency:{zone}" in drill.undo:
        drill.fault_begins(ended + "; the latency remains")
    else:
        drill.fault_ends(ended)


def _drop_table(namespace: str) -> None:
    in_namespace(namespace, "nft", "delete", "table", "inet", NFT_TABLE, check=False)
