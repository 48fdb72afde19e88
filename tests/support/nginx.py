"""Run a chart-rendered nginx.conf in the real nginx binary on this machine.

`remap` changes only what ties the file to a pod: each volume's mount path becomes a local
directory, each `listen` port a 127.0.0.1 port, and the upstream's server an address on this
machine; it counts what it changed, so a template that moves a path or an address fails the
test instead of leaving it pointing at the pod. `Nginx` runs the result in the foreground
with the container's own arguments (as the pod's user when the tests run as root) and ends
that process only (by its PID), gracefully.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)


def version() -> str:
    """`nginx -v`'s answer, e.g. "nginx/1.22.1"."""
    assert NGINX is not None
    done = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=True)
    return done.stderr.strip().split(": ", 1)[-1]


def remap(
    conf: str,
    mounts: dict[str, str],
    local: dict[str, Path],
    ports: dict[int, int],
    upstream: str,
) -> tuple[str, dict[str, int]]:
    """`conf` with mount paths (volume -> mountPath) moved to `local` (volume -> directory),
    `listen PORT` to `listen 127.0.0.1:ports[PORT]`, and the upstream block's server to
    `upstream`. Returns the new text and how many places each change touched."""
    counts = dict.fromkeys(mounts, 0)
    volumes = {path.rstrip("/"): volume for volume, path in mounts.items()}
    # One pass, longest path first: a local directory under /tmp is not remapped again.
    alternatives = "|".join(re.escape(p) for p in sorted(volumes, key=len, reverse=True))

    def moved(match: re.Match[str]) -> str:
        volume = volumes[match[1]]
        counts[volume] += 1
        return f"{local[volume]}/"

    conf = re.sub(rf"(?<![\w/.])({alternatives})/", moved, conf)
    conf, counts["listen"] = re.subn(
        r"(?m)^(\s*listen\s+)(\d+)\b", lambda m: f"{m[1]}127.0.0.1:{ports[int(m[2])]}", conf
    )
    conf, counts["upstream"] = re.subn(
        r"(upstream\s+\S+\s*\{\s*server\s+)[^\s;]+", rf"\g<1>{upstream}", conf
    )
    return conf, counts


def as_user(user: tuple[int, int] | None) -> list[str]:
    """The command prefix that runs nginx as (uid, gid), as a pod's securityContext would
    (root only: setpriv, from util-linux); none when `user` is None."""
    if user is None:
        return []
    return ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", "--"]


def check(conf_file: Path, prefix: Path, user: tuple[int, int] | None = None) -> str:
    """`nginx -t` on the file: its report (raises with it when the file is refused)."""
    assert NGINX is not None
    done = subprocess.run(
        [*as_user(user), NGINX, "-t", "-p", f"{prefix}/", "-c", str(conf_file), "-e", "stderr"],
        stdout=subprocess.DEVNULL,  # it opens /dev/stdout (the access log): one it may open
        stderr=subprocess.PIPE,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"nginx -t refused {conf_file}:\n{done.stderr}")
    return done.stderr


class Nginx:
    """nginx in the foreground: `args` are the container's (config path already local), the
    prefix a scratch directory; stdout (the access log) and stderr go to files there, owned
    by `user` when nginx runs as one (it reopens /dev/stdout for its access log)."""

    def __init__(
        self, args: list[str], prefix: Path, health_url: str, user: tuple[int, int] | None = None
    ) -> None:
        assert NGINX is not None
        self.command = [*as_user(user), NGINX, "-p", f"{prefix}/", *args]
        self.health_url = health_url
        self.access_log = prefix / "stdout.log"
        self.error_log = prefix / "stderr.log"
        self.user = user
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        for path in (self.access_log, self.error_log):
            path.touch()
            if self.user is not None:
                os.chown(path, *self.user)
        with self.access_log.open("ab") as out, self.error_log.open("ab") as err:
            # A session of its own: its workers die with it even if it has to be killed.
            self.proc = subprocess.Popen(
                self.command, stdout=out, stderr=err, start_new_session=True
            )
        try:
            self._wait_ready(timeout_s=15)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_ready(self, timeout_s: float) -> None:
        """Until /healthz answers 200 (both listeners are bound before workers start)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited {self.proc.returncode}: {self.errors()}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        raise RuntimeError(f"nginx not ready after {timeout_s}s: {self.errors()}")

    def stop(self) -> None:
        """SIGQUIT (the image's stop signal: calls in flight finish), then, only if it hangs,
        SIGKILL to the process group this object started."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def errors(self) -> str:
        return self.error_log.read_text(errors="replace")[-3000:]

    def log_lines(self) -> list[str]:
        return self.access_log.read_text(errors="replace").splitlines()


def children(pid: int) -> list[int]:
    """The PIDs of a process's children (nginx's workers), from /proc."""
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def uid(pid: int) -> int:
    """A process's effective user id, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])
    raise LookupError(f"no Uid line for process {pid}")
