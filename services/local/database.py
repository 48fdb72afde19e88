"""The private zone's PostgreSQL on the local platform: a real server, supervised like any
other process, so a drill can stop it hard and watch the zone fail closed and recover.

Layout (`PostgresLayout`, pure): the cluster lives beside the private zone's data
(`var/private/postgres`) and survives `isthmus down`, like the SQLite file does. PostgreSQL
refuses to run as root, so as root the server runs as the `postgres` account (Debian's
package creates it); when that account cannot reach the private folder (pytest's 0700 temp
dirs) the cluster goes to `/var/tmp/isthmus-postgres/<hash of the folder>` instead, and
`postgres.location` in the private folder says where.

Access: only the `isthmus` role, only to the `isthmus` database, with a password
(SCRAM) that lives in the private zone's secrets folder and reaches libpq through a passfile
(`?passfile=` in the URL), never the URL itself. TCP on the zone's own address for the
services; the Unix socket (0700, in the cluster folder) for observers on the host such as
the drills' order reconciliation. Nothing else is in `pg_hba.conf`.

`prepare()` (I/O, idempotent) runs before the supervisor starts the server: initdb once,
then the role and the database in single-user mode (no server, no superuser password).
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVER_ACCOUNT = "postgres"
DATABASE = "isthmus"
ROLE = "isthmus"
READY_MARKER = "database system is ready to accept connections"
FALLBACK_ROOT = Path("/var/tmp/isthmus-postgres")  # noqa: S108 (root-owned, 0711; see module doc)
_DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_INSTALL_HINT = "`scripts/setup` installs it (Debian package postgresql)"


@dataclass(frozen=True)
class PostgresLayout:
    """Where one local PostgreSQL cluster lives and listens."""

    root: Path  # holds data/, sock/ (owned by the server account)
    host: str  # the private zone's address
    port: int
    bin_dir: Path
    secrets_dir: Path  # the private zone's secrets (password, passfile); read by root

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def password_file(self) -> Path:
        return self.secrets_dir / "postgres.password"

    @property
    def passfile(self) -> Path:
        return self.secrets_dir / "postgres.pgpass"

    def url(self) -> str:
        """What the private services use: TCP to the zone's address, password via passfile."""
        return (
            f"postgresql+psycopg://{ROLE}@{self.host}:{self.port}/{DATABASE}"
            f"?passfile={self.passfile}&connect_timeout=3"
        )

    def observer_url(self) -> str:
        """For observers on the host (any network namespace): the Unix socket."""
        return (
            f"postgresql+psycopg://{ROLE}@/{DATABASE}?host={self.socket_dir}&port={self.port}"
            f"&passfile={self.passfile}&connect_timeout=3"
        )

    def server_argv(self) -> tuple[str, ...]:
        """The postmaster in the foreground (logs to stderr), as the server account when we
        are root. `setpriv` execs, so the supervised PID is the postmaster itself."""
        return (
            *as_server_account(),
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            f"listen_addresses={self.host}",
            "-c",
            f"unix_socket_directories={self.socket_dir}",
            "-c",
            "unix_socket_permissions=0700",
        )

    def postmaster_pid(self) -> int | None:
        """The running postmaster's PID from its lock file, or None."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def hba_conf(host: str) -> str:
    """Only the isthmus role, only its database, only with a password: over the socket (for
    observers) and from the zone's own address (the services). No superuser login at all."""
    return (
        "# written by isthmus (services/local/database.py) at every `isthmus up`\n"
        f"local {DATABASE} {ROLE} scram-sha-256\n"
        f"host  {DATABASE} {ROLE} {host}/32 scram-sha-256\n"
    )


def as_server_account() -> tuple[str, ...]:
    """The command prefix that drops root to the server account (nothing otherwise)."""
    if os.geteuid() != 0:
        return ()
    return ("setpriv", f"--reuid={SERVER_ACCOUNT}", f"--regid={SERVER_ACCOUNT}", "--init-groups")


def find_bin_dir() -> Path:
    """The directory holding initdb and postgres: Debian's (newest version first), else PATH."""
    candidates = sorted(
        (Path(p) for p in glob.glob(_DEBIAN_BIN_GLOB)),
        key=lambda d: tuple(int(x) for x in re.findall(r"\d+", d.parent.name)),
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "postgres")):
            return directory
    raise RuntimeError(
        f"PostgreSQL server binaries not found in {_DEBIAN_BIN_GLOB} or on PATH; {_INSTALL_HINT}"
    )


# ---- I/O -------------------------------------------------------------------------------
def locate(private_dir: Path, host: str = "127.0.0.1", port: int = 5433) -> PostgresLayout:
    """The cluster's folder for this private zone (see the module doc), created if needed.
    The plan sets the address the zone really listens on."""
    private_dir = private_dir.resolve()
    secrets_dir = private_dir / "secrets"
    bin_dir = find_bin_dir()
    pointer = private_dir / "postgres.location"
    if pointer.exists():
        root = Path(pointer.read_text().strip())
    else:
        root = private_dir / "postgres"
        private_dir.mkdir(parents=True, exist_ok=True)
        if not _server_can_enter(private_dir):
            digest = hashlib.sha256(str(private_dir).encode()).hexdigest()[:16]
            FALLBACK_ROOT.mkdir(mode=0o711, parents=True, exist_ok=True)
            root = FALLBACK_ROOT / digest
            pointer.write_text(f"{root}\n")
    return PostgresLayout(root, host, port, bin_dir, secrets_dir)


def prepare(layout: PostgresLayout) -> None:
    """initdb on first use, then (every time) the access rules, the role's password and
    its passfile. Idempotent; runs while the server is stopped."""
    for folder in (layout.root, layout.socket_dir):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _own(folder)
    layout.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = _password(layout.password_file)
    if not (layout.data_dir / "PG_VERSION").exists():
        shutil.rmtree(layout.data_dir, ignore_errors=True)  # a half-made one from a crash
        _run(
            [
                str(layout.bin_dir / "initdb"),
                "-D",
                str(layout.data_dir),
                "-U",
                SERVER_ACCOUNT,
                # initdb's own rules are replaced below before the server ever starts.
                "--auth=reject",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            "initdb",
        )
    hba = layout.data_dir / "pg_hba.conf"
    hba.write_text(hba_conf(layout.host))
    _own(hba)
    # Single-user mode: no server, no connection, no superuser password. The password goes
    # through stdin, never a command line or a log.
    sql = (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') "
        f"THEN CREATE ROLE {ROLE} LOGIN; END IF; END $$;\n"
        f"ALTER ROLE {ROLE} LOGIN PASSWORD '{password}';\n"
    )
    single = [str(layout.bin_dir / "postgres"), "--single", "-D", str(layout.data_dir), "postgres"]
    _run(single, "role", sql, redact=password)
    exists = _run(
        single,
        "database check",
        f"SELECT 'isthmus-db-exists' FROM pg_database WHERE datname = '{DATABASE}';\n",  # noqa: S608 (constants)
    )
    if "isthmus-db-exists" not in exists:
        _run(
            single,
            "create database",
            f"CREATE DATABASE {DATABASE} OWNER {ROLE};\n",
        )
    fd = os.open(layout.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"*:{layout.port}:{DATABASE}:{ROLE}:{password}\n")


def remove(layout: PostgresLayout) -> None:
    """Delete the cluster (tests' clean-up; the server must be stopped)."""
    shutil.rmtree(layout.root, ignore_errors=True)


def _password(path: Path) -> str:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(24))
    value = path.read_text().strip()
    if not re.fullmatch(r"[0-9a-f]{32,}", value):
        raise RuntimeError(f"{path} does not hold a hex password of at least 32 digits")
    return value


def _server_can_enter(folder: Path) -> bool:
    if os.geteuid() != 0:
        return True
    probe = subprocess.run(  # noqa: S603 (fixed arguments)
        [*as_server_account(), "test", "-x", str(folder)], check=False, capture_output=True
    )
    return probe.returncode == 0


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_ACCOUNT)
        os.chown(path, account.pw_uid, account.pw_gid)


def _run(argv: list[str], what: str, stdin: str | None = None, redact: str = "") -> str:
    done = subprocess.run(  # noqa: S603 (our fixed arguments)
        [*as_server_account(), *argv],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, "LC_ALL": "C"},
    )
    if done.returncode != 0:
        # stderr only (stdout echoes results), and never the password: an error logs the
        # statement that failed.
        message = done.stderr[-2000:].replace(redact, "***") if redact else done.stderr[-2000:]
        raise RuntimeError(f"PostgreSQL {what} failed ({done.returncode}): {message}")
    return done.stdout
