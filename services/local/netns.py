"""Zone isolation on one machine: a Linux network namespace per zone and one for the gateway,
joined by veth links in a star (private <-> gateway <-> public), with the host linked to the
gateway only.

    host (callers) --10.77.0.0/24-- gateway ns --10.77.1.0/24-- private zone ns
                                               --10.77.2.0/24-- public zone ns (Ray, Serve)

Each zone namespace has exactly one link, to the gateway namespace, and no default route, so
a zone reaches nothing but its own addresses and the gateway's side of its link; the gateway
namespace does not forward (a fresh namespace has ip_forward=0), so zones cannot reach each
other or the host. Serve's listeners on all interfaces are therefore reachable only from the
gateway namespace. The plan is pure data; `apply`/`remove` run `ip` and need root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

PREFIX = "ism"


@dataclass(frozen=True)
class Link:
    """A veth pair: `near` end in namespace `near_ns` (None = host), `far` end in `far_ns`."""

    near_ns: str | None
    near_if: str
    near_ip: str
    far_ns: str
    far_if: str
    far_ip: str


@dataclass(frozen=True)
class NetPlan:
    namespaces: tuple[str, ...]
    links: tuple[Link, ...]
    zone_ns: dict[str, str]  # zone name -> namespace
    zone_ip: dict[str, str]  # zone name -> address its services listen on
    gateway_ip: str  # where callers on the host reach the gateway
    gateway_ns: str
    host_link: str

    def namespace_of(self, zone: str | None) -> str:
        return self.gateway_ns if zone is None else self.zone_ns[zone]


def plan(zones: Sequence[str], subnet: str = "10.77", prefix: str = PREFIX) -> NetPlan:
    """Namespaces and links for `zones` (in order); interface names stay under 16 bytes."""
    gateway_ns, host_link = f"{prefix}-gateway", f"{prefix}-gw-host"
    links = [Link(None, host_link, f"{subnet}.0.1", gateway_ns, "host0", f"{subnet}.0.2")]
    zone_ns: dict[str, str] = {}
    zone_ip: dict[str, str] = {}
    for i, zone in enumerate(zones, start=1):
        namespace = f"{prefix}-z{i}-{zone}"[:40]
        zone_ns[zone] = namespace
        zone_ip[zone] = f"{subnet}.{i}.2"
        links.append(
            Link(gateway_ns, f"zone{i}", f"{subnet}.{i}.1", namespace, "gw0", f"{subnet}.{i}.2")
        )
    namespaces = (gateway_ns, *zone_ns.values())
    return NetPlan(
        namespaces, tuple(links), zone_ns, zone_ip, f"{subnet}.0.2", gateway_ns, host_link
    )


def setup_commands(net: NetPlan) -> list[list[str]]:
    commands = [["ip", "netns", "add", ns] for ns in net.namespaces]
    commands += [["ip", "-n", ns, "link", "set", "lo", "up"] for ns in net.namespaces]
    for link in net.links:
        near = [] if link.near_ns is None else ["-n", link.near_ns]
        commands.append(
            [
                "ip",
                *near,
                "link",
                "add",
                link.near_if,
                "type",
                "veth",
                "peer",
                "name",
                link.far_if,
                "netns",
                link.far_ns,
            ]
        )
        commands.append(["ip", *near, "addr", "add", f"{link.near_ip}/24", "dev", link.near_if])
        commands.append(["ip", *near, "link", "set", link.near_if, "up"])
        commands.append(
            ["ip", "-n", link.far_ns, "addr", "add", f"{link.far_ip}/24", "dev", link.far_if]
        )
        commands.append(["ip", "-n", link.far_ns, "link", "set", link.far_if, "up"])
    return commands


def teardown_commands(net: NetPlan) -> list[list[str]]:
    # Deleting a namespace deletes the veth ends inside it, and with them their peers.
    return [["ip", "link", "del", net.links[0].near_if]] + [
        ["ip", "netns", "del", ns] for ns in reversed(net.namespaces)
    ]


def run_ip(command: list[str], check: bool = True) -> None:
    """Run one `ip` command (from our plans only), resolving the tool's full path."""
    tool = shutil.which("ip") or "/usr/sbin/ip"
    result = subprocess.run(  # noqa: S603 (commands built above from validated names)
        [tool, *command[1:]], check=False, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise OSError(f"{' '.join(command)} failed: {result.stderr.strip()}")


def can_isolate() -> bool:
    """Root and the `ip` tool: namespaces are possible."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    try:
        run_ip(["ip", "netns", "list"])
    except OSError:
        return False
    return True


def apply(net: NetPlan) -> None:
    remove(net)  # leftovers of a run that was killed
    for command in setup_commands(net):
        run_ip(command)


def remove(net: NetPlan) -> None:
    for command in teardown_commands(net):
        run_ip(command, check=False)


def exec_prefix(namespace: str | None) -> list[str]:
    """Prefix that runs a command inside `namespace` (nothing for the host)."""
    return [] if namespace is None else ["ip", "netns", "exec", namespace]
