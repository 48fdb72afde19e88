"""A userspace TCP delay proxy: each byte it relays, either way, leaves `delay_ms` (plus up to
`jitter_ms`) after it arrived, in order. The local kernel has no netem, so the
`latency-loss` drill puts this in the path instead (chaos/local/latency.py redirects the
gateway's connections to a zone through it with an nftables DNAT rule).

    python -m chaos.local.delay_proxy --listen-host H --target HOST:PORT [--target ...]
        --delay-ms 25 [--jitter-ms 5] [--mark 1]

One listener per target, on an ephemeral port of H; a line `relay HOST:PORT on H:PORT` per
listener once all listen, then `ready`. Upstream sockets carry SO_MARK `mark` so the DNAT rule
can leave the proxy's own connections alone. On SIGTERM it prints `relayed N connections,
B bytes` and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Totals:
    connections: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Delay:
    delay_s: float
    jitter_s: float = 0.0

    def due(self, now: float, last_due: float, rng: random.Random) -> float:
        """When a chunk that arrived at `now` leaves: never before the previous chunk of the
        same direction (a link delays, it does not reorder)."""
        return max(now + self.delay_s + rng.uniform(0.0, self.jitter_s), last_due)


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: Delay,
    totals: Totals,
    rng: random.Random,
) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(chunk)
            await writer.drain()
            totals.bytes += len(chunk)
        with contextlib.suppress(OSError):
            writer.write_eof()

    sender = asyncio.create_task(send())
    last_due = 0.0
    try:
        while chunk := await reader.read(65536):
            last_due = delay.due(time.monotonic(), last_due, rng)
            queue.put_nowait((last_due, chunk))
    except OSError:
        pass
    finally:
        queue.put_nowait((last_due, b""))
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await sender


async def _relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    target: tuple[str, int],
    delay: Delay,
    mark: int,
    totals: Totals,
) -> None:
    rng = random.Random()  # noqa: S311 (jitter, not security)
    upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if mark:
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
    upstream.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(upstream, target)
        up_reader, up_writer = await asyncio.open_connection(sock=upstream)
    except OSError:
        upstream.close()
        client_writer.close()
        return
    totals.connections += 1
    try:
        await asyncio.gather(
            _pump(client_reader, up_writer, delay, totals, rng),
            _pump(up_reader, client_writer, delay, totals, rng),
        )
    finally:
        for writer in (up_writer, client_writer):
            writer.close()


async def serve(
    listen_host: str,
    targets: Sequence[tuple[str, int]],
    delay: Delay,
    mark: int = 0,
    say: object = print,
    stop: asyncio.Event | None = None,
) -> Totals:
    """Relay until `stop` is set (by default: SIGTERM or SIGINT); the totals."""
    totals = Totals()
    servers = []
    for target in targets:

        async def handle(
            r: asyncio.StreamReader, w: asyncio.StreamWriter, t: tuple[str, int] = target
        ) -> None:
            await _relay(r, w, t, delay, mark, totals)

        server = await asyncio.start_server(handle, listen_host, 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        say(f"relay {target[0]}:{target[1]} on {listen_host}:{port}")  # type: ignore[operator]
    say("ready")  # type: ignore[operator]
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.close()
    return totals


def _target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="delay_proxy", description=__doc__.split("\n\n")[0])
    p.add_argument("--listen-host", required=True)
    p.add_argument("--target", type=_target, action="append", required=True)
    p.add_argument("--delay-ms", type=float, required=True)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--mark", type=int, default=0)
    args = p.parse_args(argv)
    if args.delay_ms < 0 or args.jitter_ms < 0:
        p.error("--delay-ms and --jitter-ms must not be negative")
    delay = Delay(args.delay_ms / 1000, args.jitter_ms / 1000)

    def say(line: str) -> None:
        print(line, flush=True)

    totals = asyncio.run(serve(args.listen_host, args.target, delay, args.mark, say))
    say(f"relayed {totals.connections} connections, {totals.bytes} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
