"""`isthmus chaos list | run NAME [--load RPS] | run --all | run NAME --target kubernetes |
report`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chaos import context
from chaos.edits import PROTECTIONS, with_variables
from chaos.report import summary_table
from chaos.runner import DRILLS, drill_file, load_drill, run_drill


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="isthmus chaos", description="Chaos drills.")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the drills and what each touches")
    run = sub.add_parser("run", help="run one drill (or --all) against `isthmus up`")
    run.add_argument("name", nargs="?", help="drill name (see `isthmus chaos list`)")
    run.add_argument("--all", action="store_true", help="every drill, one after the other")
    run.add_argument("--load", type=float, help="load rounds per second (drill's default)")
    run.add_argument(
        "--target",
        choices=["local", "kubernetes"],
        default="local",
        help="local: against `isthmus up` (default); kubernetes: the drill's Kubernetes form "
        "(chaos/drills/kubernetes) under Chaos Toolkit, against the cluster KUBECONFIG, "
        "ISTHMUS_KUBE_CONTEXT or ISTHMUS_KUBE_API_URL names",
    )
    run.add_argument(
        "--without",
        action="append",
        choices=list(PROTECTIONS),
        help="switch a protection off for the drill (to see it fail); repeatable: "
        + "; ".join(f"{name}: {p.what}" for name, p in PROTECTIONS.items()).replace("%", "%%"),
    )
    run.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="replace a value of the drill's configuration (a YAML scalar), e.g. kills=1 for "
        "a short form; repeatable",
    )
    report = sub.add_parser("report", help="summary table of the drills run so far")
    for p in (run, report):
        p.add_argument("--run-dir", type=Path, default=Path("var/run"), help="as given to up")
        p.add_argument("--report-dir", type=Path, default=Path("var/reports/chaos"))
    args = parser.parse_args(argv)
    if args.action == "list":
        return _list()
    if args.action == "report":
        return _report(args.report_dir)
    try:
        variables = parse_variables(args.var)
    except ValueError as error:
        parser.error(str(error))
    if args.target == "kubernetes":
        if args.all or not args.name or args.without or args.load:
            parser.error("--target kubernetes runs one named drill; --all, --without and "
                         "--load are the local target's")  # fmt: skip
        return _run_kubernetes(parser, args.name, variables, args.report_dir)
    names = sorted(p.stem for p in DRILLS.glob("*.yaml")) if args.all else [args.name]
    if names == [None]:
        parser.error("give a drill name or --all")
    for name in names:  # unknown names and variables fail before anything runs
        try:
            with_variables(load_drill(drill_file(name))[0], variables)
        except ValueError as error:
            parser.error(f"{name}: {error}")
    verdicts = []
    for name in names:
        progress = _Progress()
        progress.start()
        try:
            result = run_drill(
                name, args.run_dir, args.report_dir, args.load, args.without, variables
            )
        finally:
            progress.stop()
        report = args.report_dir / f"{result.drill}.md"
        print(f"{result.drill}: {result.verdict.upper()}  (report {report})")
        verdicts.append(result.verdict)
    if len(names) > 1:
        _report(args.report_dir)
    return 0 if all(v == "passed" for v in verdicts) else 1


def _run_kubernetes(
    parser: argparse.ArgumentParser, name: str, variables: dict[str, Any], report_dir: Path
) -> int:
    from chaos.kubernetes.run import load_form, run_form

    try:
        load_form(name, variables)
    except ValueError as error:
        parser.error(f"{name}: {error}")
    verdict, journal = run_form(name, variables, report_dir)
    print(f"{name} (kubernetes): {verdict.upper()}  (journal {journal})")
    return 0 if verdict == "passed" else 1


def parse_variables(pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs, each value read as a YAML scalar (3 is an int, true a bool)."""
    import yaml

    variables: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--var wants KEY=VALUE, not {pair!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise ValueError(f"--var {key}: not a YAML scalar: {raw!r}") from None
        if isinstance(value, dict | list):
            raise ValueError(f"--var {key}: a single value, not {raw!r}")
        variables[key.strip()] = value
    return variables


def _list() -> int:
    for path in sorted(DRILLS.glob("*.yaml")):
        experiment, spec = load_drill(path)
        print(f"{spec.drill:<26} targets {','.join(spec.targets):<22} {experiment['title']}")
    return 0


def _report(report_dir: Path) -> int:
    results = [
        json.loads(p.read_text())
        for p in sorted(report_dir.glob("*.json"))
        if not p.name.endswith(".journal.json")
    ]
    if not results:
        print(f"no drill results in {report_dir}")
        return 1
    table = summary_table(results)
    (report_dir / "summary.md").write_text(table + "\n")
    print(table)
    return 0


class _Progress(context.EverySecond):
    """One line a second while a drill runs: fault state, calls/s, errors, p99, replicas."""

    def tick(self) -> None:
        try:
            drill = context.current()
        except RuntimeError:
            return
        now = drill.now()
        window = drill.load.window(now - 1, now)
        faulted = bool(drill.fault_windows) and drill.fault_windows[-1][1] is None
        latencies = sorted(window.latencies_s)
        p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0
        replicas = drill.replicas[-1][1] if drill.replicas else "?"
        print(
            f"  t={now:6.1f}s {'FAULT' if faulted else 'ok   '} calls/s {window.total:4d} "
            f"errors {window.total - window.ok:3d} p99 {p99:7.1f} ms "
            f"replicas {replicas}",
            file=sys.stderr,
            flush=True,
        )
