"""A real, throw-away PostgreSQL server for tests.

Why a real server: SQLite and mocks hide exactly the behaviour (types, locking, transactional
DDL) that PostgreSQL-backed code depends on. Each `EphemeralPostgres` owns a private cluster
(own data dir, own port, TCP on 127.0.0.1 only) so tests never touch a shared or system
database and can run on any machine that has the server binaries installed.

    with EphemeralPostgres(tmp_path) as pg:
        engine = sqlalchemy.create_engine(pg.url)
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"
DATABASE = "isthmus"
SUPERUSER = "postgres"
# Server binaries refuse to run as root, so as root they run as this OS account instead.
SERVER_OS_USER = "postgres"

_REQUIRED_BINARIES = ("initdb", "pg_ctl", "createdb")
_INSTALL_HINT = "install the PostgreSQL server with `apt-get install postgresql`"
_DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# Unix socket paths are limited to 108 bytes (sun_path); keep a margin for ".s.PGSQL.NNNNN".
_MAX_SOCKET_DIR_LEN = 90
_PORT_ATTEMPTS = 5
_LOG_TAIL_LINES = 40
_START_TIMEOUT_S = 60


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _REQUIRED_BINARIES)


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    """Sort /usr/lib/postgresql/<version>/bin numerically so 15 beats 9.6 (a string sort
    would not)."""
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))


def find_pg_bin() -> Path:
    """Return the directory holding initdb, pg_ctl and createdb.

    Debian keeps server binaries off PATH (only in /usr/lib/postgresql/<version>/bin), so that
    location is checked first, newest version first; PATH covers other layouts.
    """
    for candidate in sorted(
        (Path(p) for p in glob.glob(_DEBIAN_BIN_GLOB)), key=_version_key, reverse=True
    ):
        if _has_binaries(candidate):
            return candidate
    initdb = shutil.which("initdb")
    if initdb is not None and _has_binaries(Path(initdb).parent):
        return Path(initdb).parent
    raise RuntimeError(
        f"PostgreSQL server binaries ({', '.join(_REQUIRED_BINARIES)}) not found in "
        f"{_DEBIAN_BIN_GLOB} or on PATH; {_INSTALL_HINT}"
    )


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _clean_env() -> dict[str, str]:
    """The caller's PG* variables (PGDATA, PGHOST, PGPORT, ...) would silently redirect
    pg_ctl and createdb to some other cluster, so they are dropped; LC_ALL=C keeps messages
    in English so the log can be matched for 'Address already in use'."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def _free_port() -> int:
    """Ask the kernel for an unused port. Another process may take it before the server
    binds, which is why start() retries on 'Address already in use'."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class EphemeralPostgres:
    """A private PostgreSQL cluster with database `isthmus`, reachable only on 127.0.0.1.

    Authentication is `trust`: the cluster holds only test data and lives for one test,
    and binding only the loopback address keeps it off the network.
    """

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir)
        self._bin_dir: Path | None = None
        self._runtime_dir: Path | None = None
        self._socket_dir: Path | None = None
        self._port: int | None = None
        self._running = False

    # -- public API ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("EphemeralPostgres is not started")
        return self._port

    @property
    def url(self) -> str:
        """SQLAlchemy URL; psycopg 3 is the driver the project depends on."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{DATABASE}"

    @property
    def data_dir(self) -> Path:
        return self._runtime("data")

    @property
    def log_path(self) -> Path:
        return self._runtime("server.log")

    def start(self) -> None:
        """initdb, start the server on a free loopback port, create the database.

        On any failure everything created so far is stopped and removed before raising, since
        a context manager's __exit__ does not run when __enter__ raises.
        """
        if self._runtime_dir is not None:
            raise RuntimeError("EphemeralPostgres.start() called twice")
        self._bin_dir = find_pg_bin()
        try:
            self._runtime_dir = self._make_runtime_dir()
            self._socket_dir = self._make_socket_dir()
            self._initdb()
            self._start_server()
            self._create_database()
        except BaseException:
            self._discard()
            raise

    def stop(self) -> None:
        """Stop the server; a no-op when it is not running (never started, already stopped,
        or died on its own), so it is safe in finally blocks and teardown."""
        if self._runtime_dir is None or not (self.data_dir / "postmaster.pid").exists():
            self._running = False
            return
        # pg_ctl only signals the postmaster recorded in *our* data dir, i.e. the process
        # this object started; nothing else on the machine is touched.
        result = self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(_START_TIMEOUT_S))
        if result.returncode != 0 and self._is_running():
            result = self._pg_ctl("stop", "-m", "immediate", "-w", "-t", str(_START_TIMEOUT_S))
        if result.returncode == 0 or not self._is_running():
            self._running = False
            return
        raise RuntimeError(self._describe_failure("pg_ctl stop", result))

    def close(self) -> None:
        """Stop and delete the cluster. The server log is first copied to
        base_dir/postgres.log so a failing test can still be diagnosed afterwards."""
        self.stop()
        self._discard()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- steps ----------------------------------------------------------------------------

    def _make_runtime_dir(self) -> Path:
        """Create a fresh directory the server's OS user owns.

        As root the server runs as `postgres`, which must be able to traverse every parent
        directory. pytest's base temp (/tmp/pytest-of-root) is 0700 root, so when base_dir is
        not reachable by `postgres` the cluster goes to the system temp dir instead, rather
        than loosening permissions on directories this class does not own.
        """
        self.base_dir.mkdir(parents=True, exist_ok=True)
        parents = [self.base_dir]
        if _running_as_root():
            parents += [Path(tempfile.gettempdir()), Path("/tmp")]
        for parent in parents:
            path = Path(tempfile.mkdtemp(prefix="pg-", dir=parent))
            if self._own_and_check(path):
                return path
            shutil.rmtree(path, ignore_errors=True)
        raise RuntimeError(
            f"user {SERVER_OS_USER!r} cannot reach a directory under any of {parents}"
        )

    def _make_socket_dir(self) -> Path:
        """Unix sockets are still created (pg_ctl expects a socket dir), but in a private
        0700 dir; a long base_dir would overflow sun_path, so then a short one is used."""
        runtime = self._runtime(".")
        if len(str(runtime / "sock")) <= _MAX_SOCKET_DIR_LEN:
            path = runtime / "sock"
            path.mkdir(mode=0o700)
            if self._own_and_check(path):
                return path
        path = Path(tempfile.mkdtemp(prefix="pgs-", dir="/tmp"))
        if not self._own_and_check(path):
            shutil.rmtree(path, ignore_errors=True)
            raise RuntimeError(f"user {SERVER_OS_USER!r} cannot use socket dir {path}")
        return path

    def _own_and_check(self, path: Path) -> bool:
        """Hand `path` to the server user and confirm it can really write there (parent
        directories may block it)."""
        if not _running_as_root():
            return True
        account = pwd.getpwnam(SERVER_OS_USER)
        os.chown(path, account.pw_uid, account.pw_gid)
        os.chmod(path, 0o700)
        probe = self._run(["test", "-w", str(path), "-a", "-x", str(path)], as_server=True)
        return probe.returncode == 0

    def _initdb(self) -> None:
        # --locale=C: the only locale every machine has, and collation-independent results.
        result = self._run(
            [
                str(self._bin("initdb")),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            as_server=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise RuntimeError(self._describe_failure("initdb", result))

    def _start_server(self) -> None:
        for _ in range(_PORT_ATTEMPTS):
            port = _free_port()
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            options = " ".join(
                [
                    # Security rule: only the loopback address, never "*" or a LAN address.
                    f"-c listen_addresses={HOST}",
                    f"-p {port}",
                    f"-k {shlex.quote(str(self._socket_dir))}",
                    "-c fsync=on",
                    "-c max_connections=100",
                ]
            )
            result = self._pg_ctl(
                "-w", "-t", str(_START_TIMEOUT_S), "-o", options, "-l", str(self.log_path), "start"
            )
            if result.returncode == 0:
                self._port = port
                self._running = True
                return
            if "Address already in use" not in self._log_text(log_offset):
                break
            self.stop()  # in case the postmaster outlived pg_ctl's wait
        raise RuntimeError(self._describe_failure("pg_ctl start", result))

    def _create_database(self) -> None:
        result = self._run(
            [
                str(self._bin("createdb")),
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                DATABASE,
            ],
            as_server=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(self._describe_failure("createdb", result))

    def _is_running(self) -> bool:
        # pg_ctl status: 0 running, 3 not running, 4 no data dir.
        return self._pg_ctl("status").returncode == 0

    def _discard(self) -> None:
        """Best-effort teardown used after failures and by close(): never masks the original
        error, and keeps the server log next to the test's other artefacts."""
        with contextlib.suppress(Exception):
            self.stop()
        if self._runtime_dir is not None and self.log_path.exists():
            with contextlib.suppress(OSError):
                shutil.copyfile(self.log_path, self.base_dir / "postgres.log")
        for path in (self._socket_dir, self._runtime_dir):
            if path is not None and not self._running:
                shutil.rmtree(path, ignore_errors=True)
        if not self._running:
            self._socket_dir = None
            self._runtime_dir = None
            self._port = None

    # -- plumbing -------------------------------------------------------------------------

    def _runtime(self, name: str) -> Path:
        if self._runtime_dir is None:
            raise RuntimeError("EphemeralPostgres is not started")
        return (self._runtime_dir / name) if name != "." else self._runtime_dir

    def _bin(self, name: str) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_pg_bin()
        return self._bin_dir / name

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run(
            [str(self._bin("pg_ctl")), "-D", str(self.data_dir), *args],
            as_server=True,
            timeout=_START_TIMEOUT_S + 30,
        )

    def _run(
        self, args: Sequence[str], *, as_server: bool, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run a command, as the `postgres` OS user when we are root (initdb and pg_ctl refuse
        to run as root). Output is captured for error messages; the postmaster itself writes
        to the -l log file, so pg_ctl does not hold the pipes open."""
        command = list(args)
        if as_server and _running_as_root():
            command = ["runuser", "-u", SERVER_OS_USER, "--", *command]
        return subprocess.run(
            command,
            cwd=self._runtime_dir or "/",
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _log_text(self, offset: int = 0) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except (OSError, RuntimeError):
            return ""

    def _describe_failure(self, step: str, result: subprocess.CompletedProcess[str]) -> str:
        tail = "\n".join(self._log_text().splitlines()[-_LOG_TAIL_LINES:]) or "(empty)"
        return (
            f"{step} failed with exit code {result.returncode}: {shlex.join(result.args)}\n"
            f"--- stdout ---\n{result.stdout.strip()}\n"
            f"--- stderr ---\n{result.stderr.strip()}\n"
            f"--- server log (last {_LOG_TAIL_LINES} lines) ---\n{tail}"
        )
