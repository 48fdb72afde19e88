"""The `isthmus` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from services import constants


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # the training job owns its own arguments
        from ray_jobs.ctr import train

        return train.main(argv[1:])
    if argv[:1] == ["chaos"]:  # the drills own their arguments (chaos/cli.py)
        from chaos import cli as chaos_cli

        return chaos_cli.main(argv[1:])
    if argv[:1] == ["sync"]:  # the Spark data jobs own their arguments too (issue #6)
        from ray_jobs.sync import cli as sync_cli

        return sync_cli.main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
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
    contract.add_argument(
        "--descriptor-set",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="lint another team's FileDescriptorSet (`buf build` or `protoc --include_imports` "
        "output) as the gateway would load it; repeatable",
    )
    contract.set_defaults(handler=_contract)

    plan = sub.add_parser(
        "plan", help="validate the topology against the contract and print what would run"
    )
    plan.add_argument("--topology", type=Path, help=f"topology YAML (or ${constants.ENV_TOPOLOGY})")
    plan.set_defaults(handler=_plan)

    render = sub.add_parser(
        "render", help="Kubernetes artefacts from the topology: helm-values | values-schema"
    )
    from services.deploy.cli import add_arguments as render_arguments

    render_arguments(render)

    gateway = sub.add_parser("gateway", help="run the gateway (the one door)")
    gateway.add_argument(
        "--topology", type=Path, help=f"topology YAML (or ${constants.ENV_TOPOLOGY})"
    )
    from services.gateway.app import add_arguments as gateway_arguments

    gateway_arguments(gateway)
    gateway.set_defaults(handler=_gateway)

    sub.add_parser("chaos", help="chaos drills: list | run NAME [--load RPS] | run --all | report")
    sub.add_parser("train", help="train the CTR model on the Open Bandit logs and publish it")
    sub.add_parser(
        "sync", help="Spark data jobs: events, features, training-set, erase, rollback-features"
    )

    serve = sub.add_parser(
        "serve", help="run a zone's services (profile, orders; events; ads on Ray Serve)"
    )
    serve.add_argument(
        "--topology", type=Path, help=f"topology YAML (or ${constants.ENV_TOPOLOGY})"
    )
    from services.private.main import add_arguments
    from services.public.ads.main import add_arguments as ads_arguments

    add_arguments(serve)
    ads_arguments(serve)
    serve.set_defaults(handler=_serve)

    up = sub.add_parser(
        "up", help="start the local hybrid cloud (private zone, public zone on Ray, gateway)"
    )
    up.add_argument("--topology", type=Path, help=f"topology YAML (or ${constants.ENV_TOPOLOGY})")
    up.add_argument("--run-dir", type=Path, default=Path("var/run"), help="state, logs, configs")
    isolation = up.add_mutually_exclusive_group()
    isolation.add_argument(
        "--isolate",
        dest="isolate",
        action="store_true",
        default=None,
        help="zones in network namespaces (needs root; the default when root)",
    )
    isolation.add_argument(
        "--no-isolate", dest="isolate", action="store_false", help="everything on loopback"
    )
    up.add_argument(
        "--shape",
        choices=["production", "minimal"],
        default="production",
        help="embedded topology when --topology is not given: production (two gateways, "
        "multi-node public-a, public-b to fail over to; the default) or minimal (one of each)",
    )
    up.set_defaults(handler=_up)
    status = sub.add_parser("status", help="every process of the local platform, restarts, health")
    status.add_argument("--run-dir", type=Path, default=Path("var/run"), help="as given to up")
    status.set_defaults(handler=_status)
    supervise = sub.add_parser("supervise", help="(internal) the daemon `up` starts")
    supervise.add_argument("--run-dir", type=Path, required=True, help="holds plan.json")
    supervise.set_defaults(handler=_supervise)
    down = sub.add_parser("down", help="stop everything `up` started")
    down.add_argument("--run-dir", type=Path, default=Path("var/run"), help="as given to up")
    down.set_defaults(handler=_down)

    demo = sub.add_parser(
        "demo", help="drive a compressed peak-season day through the gateway and report"
    )
    demo.add_argument("--run-dir", type=Path, default=Path("var/run"), help="as given to up")
    demo.add_argument("--report-dir", type=Path, default=Path("var/reports"), help="output")
    demo.add_argument("--seconds", type=float, default=150.0, help="length of the day")
    demo.add_argument("--base-rps", type=float, default=5.0, help="visits/s at quiet times")
    demo.add_argument("--peak-factor", type=float, default=10.0, help="peak / baseline")
    demo.add_argument("--shoppers", type=int, default=120, help="shoppers to onboard")
    demo.set_defaults(handler=_demo)
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

    if args.descriptor_set:
        return _lint_team_sets(args.descriptor_set)
    fds = load_descriptor_set()
    print(describe_methods(method_table(fds).values()))
    violations = check_contract(fds)
    for violation in violations:
        print(f"VIOLATION {violation}", file=sys.stderr)
    return 1 if violations else 0


def _lint_team_sets(paths: list[Path]) -> int:
    """Check other teams' descriptor sets as the gateway will at load: their methods with
    what the gateway makes of them, and every broken rule."""
    from services.contract.render import describe_methods
    from services.contract.teams import ContractError, load_contract, shipped_contract

    base = shipped_contract()
    try:
        contract = load_contract(paths, base)
    except ContractError as exc:
        for line in map(str, exc.violations) if exc.violations else [str(exc)]:
            print(f"VIOLATION {line}", file=sys.stderr)
        print("the gateway would refuse this configuration", file=sys.stderr)
        return 1
    methods = contract.team_methods(base)
    print(describe_methods(methods))
    for method in methods:
        if not method.is_public and not method.is_sensitive:
            print(
                f"NOTE {method.path} declares no (isthmus.options.v1.sensitivity): treated as "
                "SENSITIVE, it reaches private clusters only",
                file=sys.stderr,
            )
    print(f"ok: {len(methods)} method(s) the gateway can route", file=sys.stderr)
    return 0


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
        from services.public.events.main import serve_events

        return serve_events(args)
    if args.services == ["ads"]:
        from services.public.ads.main import serve_ads

        return serve_ads(args, load_topology(args.topology or constants.topology_path_from_env()))

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    topology = load_topology(args.topology or constants.topology_path_from_env())
    config = private_main.load_config(args, topology)
    return private_main.run(config, args.services)


def _up(args: argparse.Namespace) -> int:
    from services.local import up
    from services.topology import load_topology

    path = args.topology or constants.topology_path_from_env()
    topology = load_topology(
        path, embedded=f"local{'-minimal' if args.shape == 'minimal' else ''}.yaml"
    )
    try:
        state = up.up(topology, args.run_dir, args.isolate)
    except up.StartError as exc:
        print(f"isthmus up: {exc}", file=sys.stderr)
        return 1
    print(up.describe(state, args.run_dir.resolve(), topology))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from services.local.demo import DemoSettings, demo

    settings = DemoSettings(args.seconds, args.base_rps, args.peak_factor, args.shoppers)
    try:
        summary = demo(args.run_dir, settings, args.report_dir)
    except RuntimeError as exc:  # not up, or a sync job failed: the message says which
        print(f"isthmus demo: {exc}", file=sys.stderr)
        return 1
    print((args.report_dir / "demo.md").read_text())
    print(f"report: {args.report_dir / 'demo.md'} (chart {args.report_dir / 'demo.png'})")
    ok = (
        summary["calls"]["failed"] == 0
        and summary["sensitive_attempts_on_public_clusters"] == 0
        and summary["pii_scan"]["problem_count"] == 0
    )
    return 0 if ok else 1


def _status(args: argparse.Namespace) -> int:
    import time

    from services.local import status, up
    from services.local.supervisor import RunState, state_path

    run_dir = args.run_dir.resolve()
    if not state_path(run_dir).exists():
        print("not up (no run state)")
        return 1
    state = RunState.load(state_path(run_dir))
    health = status.gather_health(state, run_dir, up.token_for(run_dir, "operator", ttl_s=60))
    print(status.render(state, status.rows(state, health, time.time())))
    return 0 if state.phase == "ready" else 1


def _supervise(args: argparse.Namespace) -> int:
    import os

    from services.local.plan import plan_from_json
    from services.local.supervisor import ENV_RUN, supervise

    plan = plan_from_json((args.run_dir / "plan.json").read_text())
    return supervise(plan, os.environ[ENV_RUN])


def _down(args: argparse.Namespace) -> int:
    from services.local import up

    return up.down(args.run_dir)


def _plan(args: argparse.Namespace) -> int:
    from services.contract.render import describe_topology
    from services.contract.teams import load_contract
    from services.topology import load_topology
    from services.topology.placement import check_placement

    topology = load_topology(args.topology or constants.topology_path_from_env())
    table = load_contract(topology.gateway.descriptor_sets).methods  # teams' sets included
    print(describe_topology(topology, table))
    violations = check_placement(topology, table)
    for violation in violations:
        print(f"VIOLATION {violation}", file=sys.stderr)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
