"""`isthmus serve profile|orders`: run private-zone services until SIGTERM."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

import yaml

from services.core.server import Server, run_announced
from services.private.app import BINDINGS, build_server
from services.private.config import PrivateZoneConfig
from services.topology import Endpoint, ServiceKind, Topology

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "services", nargs="+", choices=sorted([*BINDINGS, "events", "ads"]), help="what to serve"
    )
    parser.add_argument(
        "--landing-dir", type=Path, help="events only: landing log directory (overrides config)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="config YAML: PrivateZoneConfig (profile, orders) or EventsConfig (events)",
    )
    parser.add_argument("--listen", help="HOST:PORT; default: the topology's endpoint")
    parser.add_argument("--database-url", help="SQLAlchemy URL; overrides the config file")


def load_config(args: argparse.Namespace, topology: Topology) -> PrivateZoneConfig:
    data = yaml.safe_load(args.config.read_text()) if args.config else {}
    config = PrivateZoneConfig.model_validate(data or {})
    server = config.server
    listen = Endpoint.parse(args.listen) if args.listen else _topology_listen(args, topology)
    if listen is not None:
        server = server.model_copy(update={"listen": listen})
    updates: dict[str, object] = {"server": server}
    if args.database_url:
        updates["database_url"] = args.database_url
    return config.model_copy(update=updates)


def _topology_listen(args: argparse.Namespace, topology: Topology) -> Endpoint | None:
    kind = ServiceKind(args.services[0])
    for zone in topology.zones:
        for spec in zone.services:
            if spec.kind is kind:
                return spec.endpoints[0]
    return None


def run(config: PrivateZoneConfig, services: list[str]) -> int:
    def build() -> tuple[Server, int, Callable[[], None]]:
        server, port, runtime = build_server(config, services)
        return server, port, runtime.close

    return run_announced(build)
