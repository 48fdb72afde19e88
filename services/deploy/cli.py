"""`isthmus render`: what the Kubernetes artefacts are generated from.

isthmus render helm-values --topology FILE --zone NAME [--ads-config FILE] [-o FILE]
isthmus render values-schema [-o FILE]     # deploy/helm/isthmus/values.schema.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from services.constants import topology_path_from_env

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "isthmus"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["helm-values", "values-schema"], help="what to write")
    parser.add_argument("--topology", type=Path, help="topology YAML (default: the embedded one)")
    parser.add_argument("--zone", help="helm-values: the zone to render")
    parser.add_argument("--ads-config", type=Path, help="helm-values: AdsConfig YAML (public)")
    parser.add_argument("--domain", default=None, help="helm-values: public zones' DNS suffix")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from services.deploy.values import values_schema

    if args.what == "values-schema":
        return _write(json.dumps(values_schema(), indent=2) + "\n", args.output)
    if not args.zone:
        print("isthmus render helm-values: --zone NAME is required", file=sys.stderr)
        return 2
    from services.contract.descriptors import load_descriptor_set, method_table
    from services.deploy.helm_values import DEFAULT_DOMAIN, RenderError, zone_values
    from services.public.ads.config import AdsConfig
    from services.topology import load_topology

    topology = load_topology(args.topology or topology_path_from_env())
    ads = AdsConfig.from_yaml_text(args.ads_config.read_text()) if args.ads_config else None
    try:
        values = zone_values(
            topology,
            args.zone,
            method_table(load_descriptor_set()),
            ads,
            args.domain or DEFAULT_DOMAIN,
        )
    except RenderError as exc:
        print(f"isthmus render helm-values: {exc}", file=sys.stderr)
        return 1
    header = (
        f"# Written by `isthmus render helm-values --zone {args.zone}` from topology "
        f"{topology.name}; edit the topology, not this file.\n"
    )
    return _write(header + yaml.safe_dump(values, sort_keys=False), args.output)


def _write(text: str, output: Path | None) -> int:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
    return 0
