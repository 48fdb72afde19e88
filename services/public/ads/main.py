"""`isthmus serve ads`: the ranking application of one public zone, from the topology."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from services.public.ads.config import AdsConfig
from services.public.ads.zone import AdsZone, run
from services.topology.model import RayConfig, ServiceKind, Topology, ZoneKind


def serve_ads(args: argparse.Namespace, topology: Topology) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    zones = [z for z in topology.zones if z.kind is ZoneKind.PUBLIC]
    if args.zone:
        zones = [topology.zone(args.zone)]
    if not zones:
        raise ValueError("the topology has no public zone to run ads in")
    zone = zones[0]
    if zone.kind is not ZoneKind.PUBLIC:
        raise ValueError(f"zone {zone.name} is {zone.kind}; ads run only in public zones")
    service = next((s for s in zone.services if s.kind is ServiceKind.ADS), None)
    if service is None:
        raise ValueError(f"zone {zone.name} runs no ads service")
    config = AdsConfig.from_yaml_text(args.config.read_text()) if args.config else AdsConfig()
    port = int(args.listen.rsplit(":", 1)[1]) if args.listen else service.endpoints[0].port
    run_dir: Path = args.run_dir
    endpoints = args.endpoints_file or run_dir / f"{service.name}.endpoints.json"
    ray = zone.ray or RayConfig()
    if args.ray_address:  # a cluster the local launcher started for this zone
        ray = ray.model_copy(update={"address": args.ray_address})
    ads = AdsZone(config, ray, port, endpoints, service.name, run_dir)
    ads.launched_cluster = bool(args.ray_address)
    if args.advertise_host:
        ads.advertise_host = args.advertise_host
    return run(ads)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", help="ads only: public zone to run (default: the first)")
    parser.add_argument(
        "--run-dir", type=Path, default=Path("var/run"), help="ads only: Ray temp and state files"
    )
    parser.add_argument(
        "--ray-address",
        help="ads only: HOST:PORT of a Ray head the local launcher started (multi-node zone)",
    )
    parser.add_argument(
        "--advertise-host",
        help="ads only: address published for the replicas (default: loopback for a local Ray)",
    )
    parser.add_argument(
        "--endpoints-file",
        type=Path,
        help="ads only: replica endpoints file (default RUN_DIR/NAME.endpoints.json)",
    )
