"""`isthmus sync ...` (also `python -m ray_jobs.sync ...`, e.g. as a Ray job):

    isthmus sync events [--continuous SECONDS] [--prune-landing]
                                                 landing log -> warehouse (+ quarantine)
    isthmus sync features [--as-of-us US]        warehouse -> public feature snapshot
    isthmus sync training-set                    warehouse + features -> training set
    isthmus sync erase [--wait SECONDS]          apply the private DB's erasures
    isthmus sync rollback-features               point CURRENT at the previous snapshot
    isthmus sync prune-landing                   drop landing files every query committed
    isthmus sync audit                           warehouse exactly once? (exit 1 if not)

Locations and the Spark master come from the topology's `data:` section. The private DB and
its keys come from a PrivateZoneConfig YAML (`--private-config`, as for `isthmus serve`).
Each command prints one JSON report on stdout (`events --continuous`: one per run, until
SIGTERM or SIGINT stops it; a run under way is stopped without committing half a batch).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ray_jobs.sync.config import Locations
from services import constants
from services.private.config import PrivateZoneConfig
from services.topology.load import load_topology
from services.topology.model import DataSpec

CONTINUOUS_LOCK_WAIT_S = 3600.0  # an erase holds the lock for minutes, not hours
COMMANDS = (
    "events",
    "features",
    "training-set",
    "erase",
    "rollback-features",
    "prune-landing",
    "audit",
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="isthmus sync", description=__doc__.split("\n\n")[0])
    p.add_argument("job", choices=COMMANDS)
    p.add_argument("--topology", type=Path, help=f"topology YAML (or ${constants.ENV_TOPOLOGY})")
    p.add_argument("--private-config", type=Path, help="PrivateZoneConfig YAML (DB and keys)")
    p.add_argument("--database-url", help="SQLAlchemy URL of the private DB; overrides config")
    p.add_argument(
        "--continuous",
        type=float,
        metavar="SECONDS",
        help="events: keep running, a run starting every SECONDS at most, until SIGTERM "
        "(default: one run over what has landed, then exit)",
    )
    p.add_argument(
        "--prune-landing",
        action="store_true",
        help="events: after each run, delete the landing files the sync has committed (as "
        "`sync prune-landing`); with --continuous this keeps the landing log and the file "
        "source's log bounded",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="erase: how long to wait for a running sync to reach a run's boundary",
    )
    p.add_argument("--as-of-us", type=int, help="features: recency reference time (default now)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from ray_jobs.sync.allowlist import NotAllowlisted
    from ray_jobs.sync.checkpoint_guard import CheckpointMismatch
    from ray_jobs.sync.completeness import SyncIncomplete
    from ray_jobs.sync.erasure import SyncBusy
    from ray_jobs.sync.export_features import ExportRefused

    try:
        return _run(args)
    except (
        SyncBusy,
        SyncIncomplete,
        CheckpointMismatch,
        ExportRefused,
        NotAllowlisted,
        ValueError,
        FileNotFoundError,
    ) as exc:
        print(f"isthmus sync {args.job}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    spec = load_topology(args.topology or constants.topology_path_from_env()).data
    locs = Locations.from_spec(spec)
    if args.job == "rollback-features":
        from ray_jobs.sync import publish

        return _report({"current": publish.rollback(locs.features.path)})
    if args.job == "audit":
        from ray_jobs.sync.audit import audit

        result = audit(locs)
        _report({**dataclasses.asdict(result), "exactly_once": result.exactly_once})
        return 0 if result.exactly_once else 1
    if args.job == "prune-landing":
        from ray_jobs.sync.prune import prune_landing

        checkpoints = [locs.sync_checkpoint.path]
        return _report({"pruned_files": prune_landing(locs.landing.path, checkpoints)})
    if args.job == "erase":
        from ray_jobs.sync import erasure
        from ray_jobs.sync.private_source import read_private

        erased = read_private(_private_config(args)).erased
        return _report(erasure.erase(locs, erased, wait_s=args.wait))
    return _spark_job(args, spec, locs)


def _spark_job(args: argparse.Namespace, spec: DataSpec, locs: Locations) -> int:
    from ray_jobs.sync.session import build_session

    spark = build_session(spec, f"isthmus-sync-{args.job}")
    try:
        if args.job == "events":
            return _events(spark, spec, locs, args.continuous, args.prune_landing)
        from ray_jobs.sync.private_source import read_private

        inputs = read_private(_private_config(args))
        if args.job == "features":
            from ray_jobs.sync import export_features

            return _report(export_features.export(spark, spec, locs, inputs, args.as_of_us))
        from ray_jobs.sync import training_set

        return _report(training_set.build(spark, spec, locs, inputs))
    finally:
        spark.stop()


def _events(
    spark: Any, spec: DataSpec, locs: Locations, continuous_s: float | None, prune: bool
) -> int:
    from ray_jobs.sync import sync_events
    from ray_jobs.sync.erasure import warehouse_lock

    if continuous_s is None:
        with warehouse_lock(locs):
            report = sync_events.run_available_now(spark, spec, locs, prune=prune)
            return _report(
                {
                    **dataclasses.asdict(report),
                    "quarantine_by_reason": sync_events.quarantine_counts(spark, locs),
                }
            )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stopping.set())
    sync_events.run_continuously(
        spark,
        spec,
        locs,
        continuous_s,
        stopping,
        # waits while an erase (or another sync) holds it: runs never overlap them
        lock=lambda: warehouse_lock(locs, wait_s=CONTINUOUS_LOCK_WAIT_S),
        on_run=_report,
        prune=prune,
    )
    return 0


def _private_config(args: argparse.Namespace) -> PrivateZoneConfig:
    data = yaml.safe_load(args.private_config.read_text()) if args.private_config else {}
    config = PrivateZoneConfig.model_validate(data or {})
    if args.database_url:
        config = config.model_copy(update={"database_url": args.database_url})
    return config


def _report(report: object) -> int:
    data = dataclasses.asdict(report) if dataclasses.is_dataclass(report) else report  # type: ignore[arg-type]
    print(json.dumps(data, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
