"""Start real isthmus server processes for system tests and benchmarks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_cli_server(
    *args: str, log: Path | None = None, new_session: bool = False
) -> tuple[subprocess.Popen[str], int]:
    """`isthmus ARGS` (a command that prints "listening on H:P"); returns the process and the
    port. Its stderr goes to `log` (or nowhere); `new_session` puts it in a process group of
    its own. The caller stops it (SIGTERM) or kills it."""
    command = [sys.executable, "-m", "services.cli", *args]
    stderr = log.open("w") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=new_session,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait(30)
        raise RuntimeError(f"server did not start: {line!r}" + (f"; see {log}" if log else ""))
    return proc, int(line.rsplit(":", 1)[1])


def listening_pid(port: int) -> int:
    """The process listening on a TCP port (`ss`, from iproute2, which scripts/setup installs)."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    pids = {int(part.split("=")[1]) for part in out.replace(",", " ").split() if "pid=" in part}
    if len(pids) != 1:
        raise RuntimeError(f"expected one process listening on port {port}: {out!r}")
    return pids.pop()


def start_private_server(
    workdir: Path, database_url: str, services: tuple[str, ...] = ("orders",)
) -> tuple[subprocess.Popen[str], int]:
    """`isthmus serve SERVICES` on 127.0.0.1:0 with key files in `workdir`."""
    config = workdir / "private.yaml"
    config.write_text(
        f"master_key: {{file: {workdir / 'master.key'}, create_if_missing: true}}\n"
        f"hmac_key: {{file: {workdir / 'hmac.key'}, create_if_missing: true}}\n"
    )
    return start_cli_server(
        "serve",
        *services,
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        database_url,
        "--config",
        str(config),
    )
