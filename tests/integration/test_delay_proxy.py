"""The latency drill's delay proxy, on loopback: it relays bytes both ways unchanged and in
order, holds each chunk back at least its delay each way, marks nothing when asked not to,
reports what it relayed, and refuses a malformed target."""

from __future__ import annotations

import asyncio
import time

import pytest

from chaos.local.delay_proxy import Delay, Totals, main, serve

pytestmark = pytest.mark.integration


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(4096):
        writer.write(data)
        await writer.drain()
    writer.close()


def test_relays_in_order_and_delays_each_way() -> None:
    payload = b"".join(i.to_bytes(4, "big") for i in range(20_000))  # 80 kB, ordered

    async def scenario() -> tuple[bytes, float, Totals]:
        echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
        port = echo.sockets[0].getsockname()[1]
        lines: list[str] = []
        ready, stop = asyncio.Event(), asyncio.Event()

        def say(line: str) -> None:
            lines.append(line)
            if line == "ready":
                ready.set()

        proxy = asyncio.create_task(
            serve("127.0.0.1", [("127.0.0.1", port)], Delay(0.05), say=say, stop=stop)
        )
        await ready.wait()
        relay_port = int(lines[0].rpartition(":")[2])
        reader, writer = await asyncio.open_connection("127.0.0.1", relay_port)
        started = time.monotonic()
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        got = await reader.read(-1)  # until the relay passes the echo's end on
        elapsed = time.monotonic() - started
        writer.close()
        stop.set()
        totals = await proxy
        echo.close()
        return got, elapsed, totals

    got, elapsed, totals = asyncio.run(scenario())
    assert got == payload
    # There and back: each direction holds the bytes at least 50 ms (a lower bound only).
    assert elapsed >= 0.1
    assert totals.connections == 1
    assert totals.bytes == 2 * len(payload)


def test_jitter_never_reorders() -> None:
    import random

    delay = Delay(0.01, jitter_s=0.05)
    rng = random.Random(7)
    due, last = [], 0.0
    for i in range(200):
        last = delay.due(i * 0.001, last, rng)
        due.append(last)
    assert due == sorted(due)
    assert all(d >= i * 0.001 + 0.01 for i, d in enumerate(due))


def test_a_malformed_target_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--listen-host", "127.0.0.1", "--target", "no-port", "--delay-ms", "5"])
    assert exited.value.code == 2
    assert "expected HOST:PORT" in capsys.readouterr().err
