"""Actions on the private zone's database (the local platform's PostgreSQL): they change
things. The server is stopped the hardest way PostgreSQL knows -- `pg_ctl stop -m immediate`,
i.e. SIGQUIT to the postmaster: no checkpoint, every session cut, crash recovery on the next
start -- and held down by the supervisor's hold file (`RUN_DIR/hold/NAME`, see
services/local/supervisor.py) until `start_database` releases it, so the outage lasts as long
as the drill says rather than the supervisor's 1 s back-off. The rollback always releases it.

`switch_off_durable_commits` is the drill's protection switched off: PostgreSQL acknowledges
a commit before its WAL is written (`synchronous_commit = off`, the WAL writer waking every
10 s), as a tuner chasing peak-season throughput might set it. The WAL writer still writes
each WAL page as it fills, so an immediate stop loses the commits on the last, partly filled
page: the last few orders acknowledged, which the order reconciliation finds missing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from chaos import context
from chaos.local.platform import DEFAULT_RUN_DIR, Platform
from services.local.database import PostgresLayout
from services.local.supervisor import Started, hold_path, is_running


def stop_database(run_dir: str = DEFAULT_RUN_DIR, timeout_s: float = 30.0) -> int:
    """Stop the private zone's PostgreSQL immediately (SIGQUIT to the postmaster) and keep it
    down until `start_database`. Returns the postmaster's PID."""
    drill = context.current()
    platform = Platform.load(run_dir)
    server = _server(platform)
    hold = hold_path(platform.run_dir, server.name)
    hold.parent.mkdir(parents=True, exist_ok=True)
    hold.touch()
    drill.undo["database"] = lambda: hold.unlink(missing_ok=True)
    layout = platform.postgres
    assert layout is not None  # _server checked
    pid = layout.postmaster_pid() or server.pid
    drill.fault_begins(f"PostgreSQL stopped hard (SIGQUIT, immediate mode; pid {pid})")
    drill.restarts_expected[server.name] = server.restarts
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + timeout_s
    while is_running(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL (pid {pid}) still runs {timeout_s:.0f}s after SIGQUIT")
        time.sleep(0.1)
    return pid


def start_database(run_dir: str = DEFAULT_RUN_DIR, timeout_s: float = 90.0) -> float:
    """Release the hold: the supervisor starts PostgreSQL again (crash recovery replays its
    WAL). Returns seconds until it accepted connections again; ends the fault window."""
    drill = context.current()
    platform = Platform.load(run_dir)
    server = _server(platform)
    hold_path(platform.run_dir, server.name).unlink(missing_ok=True)
    drill.undo_now("database")  # the same release, registered by stop_database
    released = time.monotonic()
    deadline = released + timeout_s
    while time.monotonic() < deadline:
        now = Platform.load(run_dir).state.process(server.name)
        if now.status == "running" and is_running(now.pid):  # held: not running, so a new one
            took = time.monotonic() - released
            drill.fault_ends(f"PostgreSQL accepting connections again {took:.1f}s after release")
            return round(took, 1)
        time.sleep(0.2)
    raise RuntimeError(f"PostgreSQL did not come back within {timeout_s:.0f}s of the release")


# Appended to postgresql.auto.conf (read after postgresql.conf, so it wins) while the
# protection is off; the WAL writer's longest sleep, so acknowledged commits wait in memory.
ASYNC_COMMIT = (
    "# isthmus chaos: durable commits switched off for one drill (restored by its rollback)\n"
    "synchronous_commit = off\n"
    "wal_writer_delay = '10s'\n"
)


def switch_off_durable_commits(run_dir: str = DEFAULT_RUN_DIR, timeout_s: float = 10.0) -> None:
    """Make PostgreSQL acknowledge commits before they are on disk (asynchronous commit),
    until the rollback restores its configuration. Waits until the server runs with it."""
    drill = context.current()
    platform = Platform.load(run_dir)
    _server(platform)
    layout = platform.postgres
    assert layout is not None  # _server checked
    auto = layout.data_dir / "postgresql.auto.conf"

    def restore() -> None:  # drops our block, whatever else the file holds by then
        auto.write_text(auto.read_text().replace(ASYNC_COMMIT, ""))
        _reload(layout)
        drill.switched_off.discard("durable-commits")

    drill.undo["protection:durable-commits"] = restore  # before the file changes
    drill.switched_off.add("durable-commits")
    with auto.open("a") as out:  # in place: the file stays the server account's
        out.write(ASYNC_COMMIT)
    _reload(layout)
    deadline = time.monotonic() + timeout_s
    while synchronous_commit(layout) != "off":
        if time.monotonic() > deadline:
            raise RuntimeError("PostgreSQL did not take asynchronous commit after a reload")
        time.sleep(0.2)
    drill.event("protection off: durable commits (synchronous_commit = off)")


def synchronous_commit(layout: PostgresLayout) -> str:
    """The server's `synchronous_commit` for a new session (asked over the Unix socket)."""
    import sqlalchemy as sa

    engine = sa.create_engine(layout.observer_url(), poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return str(connection.execute(sa.text("SHOW synchronous_commit")).scalar_one())
    finally:
        engine.dispose()


def _reload(layout: PostgresLayout) -> None:
    """`pg_ctl reload`: SIGHUP to the postmaster, when one runs (a held-down server reads
    the file when it starts)."""
    pid = layout.postmaster_pid()
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGHUP)


def _server(platform: Platform) -> Started:
    if platform.postgres is None:
        raise RuntimeError(
            "the private zone runs SQLite, which has no server to stop: give it "
            "`database: {engine: postgresql}` in the topology (the embedded one does)"
        )
    return platform.processes(kind="database")[0]
