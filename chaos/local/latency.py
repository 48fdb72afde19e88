"""Added latency on a zone's link: actions that change things. This kernel has no netem, so
the delay is a userspace proxy (chaos/local/delay_proxy.py) in the gateway's namespace, and
an nftables DNAT rule there (table `isthmus_chaos_delay`, output hook) sends the gateway's
new connections to the zone through it; the proxy's own upstream connections carry a socket
mark the rule skips. The gateway's established connections to the zone are then aborted
(`ss -K`), so it reconnects -- through the proxy. The rollback deletes the table, aborts the
proxied connections and stops the proxy; the gateway reconnects directly.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time

from chaos import context
from chaos.local.platform import DEFAULT_RUN_DIR, Platform, in_namespace

NFT_TABLE = "isthmus_chaos_delay"
PROXY_MARK = 0x15  # SO_MARK of the proxy's upstream sockets: the DNAT rule skips them


def add_latency(
    zone: str = "public-a",
    delay_ms: float = 25.0,
    jitter_ms: float = 5.0,
    run_dir: str = DEFAULT_RUN_DIR,
    timeout_s: float = 20.0,
) -> dict[str, str]:
    """Delay every byte each way between the gateway and `zone` by `delay_ms` (+ up to
    `jitter_ms`), i.e. the round trip by twice that. Needs zones in namespaces. Returns the
    relays (zone address -> proxy address)."""
    drill = context.current()
    platform = Platform.load(run_dir)
    link = platform.zone_link(zone)
    namespace = link.near_ns or ""
    targets = sorted(_ports_in_use(namespace, link.far_ip))
    if not targets:
        raise RuntimeError(f"the gateway has no connection to {zone} ({link.far_ip}) to delay")
    argv = [sys.executable, "-m", "chaos.local.delay_proxy", "--listen-host", link.near_ip]
    argv += ["--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms), "--mark", str(PROXY_MARK)]
    for port in targets:
        argv += ["--target", f"{link.far_ip}:{port}"]
    ip_tool = shutil.which("ip") or "/usr/sbin/ip"
    proxy = subprocess.Popen(  # noqa: S603 (our own module, in our own namespace)
        [ip_tool, "netns", "exec", namespace, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    relays = _read_relays(proxy, timeout_s)

    def undo() -> None:
        in_namespace(namespace, "nft", "delete", "table", "ip", NFT_TABLE, check=False)
        # The gateway's sockets still name the zone's address (DNAT rewrote only packets):
        # aborting those ends the proxied connections; new ones go direct.
        _abort_connections(namespace, link.far_ip)
        with contextlib.suppress(ProcessLookupError):
            proxy.send_signal(signal.SIGTERM)
        try:
            out, _ = proxy.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            out, _ = proxy.communicate()
        drill.event(f"delay proxy to {zone}: {out.strip().splitlines()[-1] if out else 'gone'}")

    drill.undo[f"latency:{zone}"] = undo
    rules = [
        f"add table ip {NFT_TABLE}",
        f"add chain ip {NFT_TABLE} out {{ type nat hook output priority -100 ; }}",
    ]
    for target, relay in relays.items():
        dport = target.rpartition(":")[2]
        rules.append(
            f"add rule ip {NFT_TABLE} out meta mark != {PROXY_MARK} ip daddr {link.far_ip} "
            f"tcp dport {dport} dnat to {relay}"
        )
    in_namespace(namespace, "nft", "-f", "-", stdin="\n".join(rules))
    drill.fault_begins(f"+{delay_ms:g} ms (jitter {jitter_ms:g} ms) each way on the link to {zone}")
    aborted = _abort_connections(namespace, link.far_ip)
    drill.event(f"{aborted} gateway connection(s) to {zone} aborted: they reconnect delayed")
    return relays


def remove_latency(zone: str = "public-a", run_dir: str = DEFAULT_RUN_DIR) -> None:
    """Undo add_latency."""
    drill = context.current()
    drill.undo_now(f"latency:{zone}")
    drill.fault_ends(f"latency on the link to {zone} removed")


def _read_relays(proxy: subprocess.Popen[str], timeout_s: float) -> dict[str, str]:
    """The proxy's `relay TARGET on LISTEN` lines, up to `ready`."""
    assert proxy.stdout is not None
    relays: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proxy.stdout.readline()
        if not line:
            break
        words = line.split()
        if words[:1] == ["ready"]:
            return relays
        if len(words) == 4 and words[0] == "relay":
            relays[words[1]] = words[3]
    proxy.kill()
    raise RuntimeError("the delay proxy did not start")


def _ports_in_use(namespace: str, address: str) -> set[int]:
    """Destination ports of the namespace's established TCP connections to `address`."""
    listed = in_namespace(namespace, "ss", "-Htn", "state", "established", "dst", address)
    ports = set()
    for line in listed.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            ports.add(int(fields[3].rpartition(":")[2]))
    return ports


def _abort_connections(namespace: str, address: str) -> int:
    """Abort the namespace's TCP connections to `address` (`ss -K`); how many."""
    killed = in_namespace(namespace, "ss", "-HtnK", "dst", address, check=False)
    return len([line for line in killed.stdout.splitlines() if line.strip()])
