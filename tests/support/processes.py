"""Start real isthmus server processes for tests and benchmarks."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the caller binds it soon after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def private_gateway_topology(path: Path, name: str, listen: int, profile_port: int) -> Path:
    """A topology of one private zone whose profile service is at 127.0.0.1:`profile_port`
    (running or not), the gateway on 127.0.0.1:`listen`."""
    path.write_text(f"""
name: {name}
gateway: {{listen: {{host: 127.0.0.1, port: {listen}}}}}
zones:
  - name: private
    kind: private
    services:
      - {{name: profile, kind: profile, endpoints: [{{host: 127.0.0.1, port: {profile_port}}}]}}
""")
    return path


@contextmanager
def gateway_process(
    topology: Path,
    config: Path,
    log: Path,
    env: Mapping[str, str],
    *extra: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """`isthmus gateway --topology T --config C [EXTRA]` with its output in `log`; stopped
    with SIGTERM when the block ends."""
    command = [sys.executable, "-m", "services.cli", "gateway", "--topology", str(topology),
               "--config", str(config), *extra]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
