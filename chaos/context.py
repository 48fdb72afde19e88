"""The drill in progress: its load, the fault windows and events, and what rollbacks must undo.

Chaos Toolkit runs controls and activities in one process (activities in the main thread), so
the runner puts one `Drill` here before the experiment starts and actions and probes reach it
through `current()`. Without a drill (an activity run on its own, e.g. `chaos run` of an
experiment outside `isthmus chaos`), probes that need the load raise a clear error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.load import SteadyLoad
from chaos.local.platform import Platform


@dataclass
class Drill:
    name: str
    platform: Platform
    load: SteadyLoad
    fault_windows: list[list[float | None]] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    undo: dict[str, Callable[[], None]] = field(default_factory=dict)  # key -> restore action
    judging: tuple[float, float] | None = None  # set while the runner judges "during"
    recovery_s: float | None = None
    restarts_expected: dict[str, int] = field(default_factory=dict)  # process -> restarts
    sync_cutoff: float | None = None  # load time the last sync run started
    switched_off: set[str] = field(default_factory=set)  # protections off for this drill
    replicas: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return self.load.now()

    def event(self, what: str) -> None:
        with self.lock:
            self.events.append((self.now(), what))

    def undo_now(self, *keys: str) -> None:
        """Undo these registered faults now (those not registered, or undone already, are
        skipped), so the rollback does not undo them again."""
        for key in keys:
            restore = self.undo.pop(key, None)
            if restore is not None:
                restore()

    def fault_begins(self, what: str) -> None:
        """A new fault window; a fault added on top of an open one starts a window of its
        own (zone-out: public-a out, then public-a and public-b out)."""
        self.event(what)
        with self.lock:
            now = self.now()
            if self.fault_windows and self.fault_windows[-1][1] is None:
                self.fault_windows[-1][1] = now
            self.fault_windows.append([now, None])

    def fault_ends(self, what: str = "") -> None:
        if what:
            self.event(what)
        with self.lock:
            if self.fault_windows and self.fault_windows[-1][1] is None:
                self.fault_windows[-1][1] = self.now()

    def closed_windows(self) -> list[tuple[float, float]]:
        end = self.now()
        return [
            (float(s or 0.0), float(e if e is not None else end)) for s, e in self.fault_windows
        ]

    def window(self, window_s: float) -> tuple[float, float]:
        """The span a probe judges: the runner's "during" span, else the last `window_s`."""
        if self.judging is not None:
            return self.judging
        now = self.now()
        return max(0.0, now - window_s), now + 1e-6


_CURRENT: Drill | None = None
_started = time.monotonic()


def current() -> Drill:
    if _CURRENT is None:
        raise RuntimeError(
            "no drill is running: run experiments with `isthmus chaos run NAME`, which drives "
            "the load these probes measure"
        )
    return _CURRENT


def install(drill: Drill | None) -> None:
    global _CURRENT
    _CURRENT = drill


class EverySecond:
    """A daemon thread that calls `tick()` once a second until stopped (the drill's replica
    sampler, the CLI's progress line)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.tick()

    def tick(self) -> None:
        raise NotImplementedError
