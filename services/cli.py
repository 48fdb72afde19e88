"""The `isthmus` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from services import constants

# Commands still to be built, and the issue that builds each; listed in --help so the shape of
# the tool is visible, refused honestly when called.
PLANNED = {
    "up": ("start the local hybrid cloud (private zone, public zone on Ray, gateway)", 7),
    "down": ("stop everything `up` started", 7),
    "demo": ("drive a compressed peak-season day through the gateway and report", 7),
    "sync": ("run the Spark sync and feature export jobs", 6),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # the training job owns its own arguments
        from ray_jobs.ctr import train

        return train.main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command in PLANNED:
        summary, issue = PLANNED[args.command]
        print(f"isthmus {args.command}: not built yet (issue #{issue}: {summary})", file=sys.stderr)
        return 2
    try:
        result: int = args.handler(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"isthmus {args.command}: {exc}", file=sys.stderr)
        return 1
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isthmus", description="Hybrid-cloud marketing and ad-serving platform."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    protos = sub.add_parser("protos", help="generate or check the code generated from protos/")
    protos.add_argument("action", choices=["gen", "check"], help="gen: regenerate; check: stale?")
    protos.set_defaults(handler=_protos)

    contract = sub.add_parser("contract", help="list every RPC's sensitivity and check the rules")
    contract.set_defaults(handler=_contract)

    plan = sub.add_parser(
        "plan", help="validate the topology against the contract and print what would run"
    )
    plan.add_argument("--topology", type=Path, help=f"topology YAML (or ${constants.ENV_TOPOLOGY})")
    plan.set_defaults(handler=_plan)

    gateway = sub.add_parser("gateway", help="run the gateway (the one door)")
    gateway.add_argument(
        "--topology", type=Path, help=f"topology YAML (or ${constants.ENV_TOPOLOGY})"
    )
    from services.gateway.app import add_arguments as gateway_arguments

    gateway_arguments(gateway)
    gateway.set_defaults(handler=_gateway)

    sub.add_parser("train", help="train the CTR model on the Open Bandit logs and publish it")

    serve = sub.add_parser("serve", help="run private-zone services (profile, orders)")
    serve.add_argument(
        "--topology", type=Path, help=f"topology YAML (or ${constants.ENV_TOPOLOGY})"
    )
    from services.private.main import add_arguments

    add_arguments(serve)
    serve.set_defaults(handler=_serve)

    for name, (summary, issue) in PLANNED.items():
        sub.add_parser(name, help=f"{summary} [planned, issue #{issue}]")
    return parser


def _protos(args: argparse.Namespace) -> int:
    from services.contract import codegen

    if args.action == "gen":
        written = codegen.generate()
        print(f"wrote {len(written)} files under {codegen.GEN_ROOT}")
        return 0
    stale = codegen.stale_files()
    if stale:
        print("generated code is stale; run `isthmus protos gen`:", *stale, sep="\n  ")
        return 1
    print("generated code is up to date")
    return 0


def _contract(args: argparse.Namespace) -> int:
    from services.contract.descriptors import check_contract, load_descriptor_set, method_table
    from services.contract.render import describe_methods

    fds = load_descriptor_set()
    print(describe_methods(method_table(fds).values()))
    violations = check_contract(fds)
    for violation in violations:
        print(f"VIOLATION {violation}", file=sys.stderr)
    return 1 if violations else 0


def _gateway(args: argparse.Namespace) -> int:
    from services.gateway import app

    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    return app.run(args.topology or constants.topology_path_from_env(), args)


def _serve(args: argparse.Namespace) -> int:
    from services.private import main as private_main
    from services.topology import load_topology

    if args.services == ["events"]:
        return _serve_events(args)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    topology = load_topology(args.topology or constants.topology_path_from_env())
    config = private_main.load_config(args, topology)
    return private_main.run(config, args.services)


def _serve_events(args: argparse.Namespace) -> int:
    from services.core.config import ServerConfig
    from services.public.events import app
    from services.topology import Endpoint

    listen = Endpoint.parse(args.listen or "127.0.0.1:50072")
    return app.run(ServerConfig(listen=listen), args.landing_dir)


def _plan(args: argparse.Namespace) -> int:
    from services.contract.descriptors import load_descriptor_set, method_table
    from services.contract.render import describe_topology
    from services.topology import load_topology
    from services.topology.placement import check_placement

    topology = load_topology(args.topology or constants.topology_path_from_env())
    table = method_table(load_descriptor_set())
    print(describe_topology(topology, table))
    violations = check_placement(topology, table)
    for violation in violations:
        print(f"VIOLATION {violation}", file=sys.stderr)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
