"""The Chaos Toolkit control every isthmus drill runs under (added by the runner).

It guards against what Chaos Toolkit leaves open (../shared/DESIGN.md):
- an abort floor: from the start of the method, a watchdog reads the drill's load every
  second; when the success ratio of the class named falls below the floor, the fault is
  stopped (`exit_gracefully`: the run ends "interrupted" and the rollbacks still run);
- a wall-clock limit per drill, by the same watchdog;
- rollbacks on SIGINT and SIGTERM: chaoslib turns SIGTERM inside a Python activity into a
  failed activity and carries on, so SIGTERM is made an interruption like Ctrl-C; during the
  rollbacks both signals are deferred so a second Ctrl-C cannot skip them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from typing import Any

from chaoslib.exit import exit_gracefully

from chaos import context

log = logging.getLogger(__name__)
_stop = threading.Event()
STATE: dict[str, Any] = {"aborted": "", "interrupted": "", "started": 0.0}


def _interrupt(signum: int, _frame: Any) -> None:
    STATE["interrupted"] = signal.Signals(signum).name
    raise SystemExit(20)


def _defer(signum: int, _frame: Any) -> None:
    log.warning("%s ignored: rollbacks are running", signal.Signals(signum).name)


def before_experiment_control(context_: Any = None, **_: Any) -> None:
    STATE.update(aborted="", interrupted="", started=time.monotonic())
    _stop.clear()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)


def before_method_control(
    context: Any = None,
    floor: float | None = None,
    sensitivity: str = "public",
    window_s: float = 5.0,
    max_duration_s: float = 600.0,
    **_: Any,
) -> None:
    threading.Thread(
        target=_watch, args=(floor, sensitivity, window_s, max_duration_s), daemon=True
    ).start()


def before_rollback_control(**_: Any) -> None:
    _stop.set()
    signal.signal(signal.SIGTERM, _defer)
    signal.signal(signal.SIGINT, _defer)


def after_experiment_control(**_: Any) -> None:
    _stop.set()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _watch(floor: float | None, sensitivity: str, window_s: float, max_s: float) -> None:
    drill = context.current()
    public = {"public": True, "sensitive": False, "any": None}[sensitivity]
    while not _stop.wait(1.0):
        if time.monotonic() - STATE["started"] > max_s:
            _abort(f"wall-clock limit of {max_s:.0f}s reached")
            return
        if floor is None:
            continue
        now = drill.now()
        ratio = drill.load.window(now - window_s, now + 1e-6, public).success_ratio
        if ratio is not None and ratio < floor:
            _abort(f"{sensitivity} success ratio {ratio:.3f} < floor {floor} over {window_s}s")
            return


def _abort(reason: str) -> None:
    if _stop.is_set():  # the run is over (or rolling back): nothing left to stop
        return
    STATE["aborted"] = reason
    with contextlib.suppress(RuntimeError):
        context.current().event(f"abort: {reason}")
    log.warning("aborting the drill: %s", reason)
    exit_gracefully()
