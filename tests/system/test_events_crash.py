"""kill -9 of the event service right after an acknowledgement: the event is in the landing
log after restart, and replaying it then is reported as a duplicate."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import grpc
from google.protobuf import timestamp_pb2

from isthmus.events.v1 import events_pb2 as pb
from isthmus.events.v1 import events_pb2_grpc
from tests.support.processes import start_cli_server


def start(landing: Path) -> tuple[subprocess.Popen[str], int]:
    return start_cli_server(
        "serve", "events", "--listen", "127.0.0.1:0", "--landing-dir", str(landing)
    )


def track(port: int, event_ids: list[str]) -> pb.TrackResponse:
    stamp = timestamp_pb2.Timestamp(seconds=int(time.time()))
    events = [
        pb.Event(event_id=e, type=pb.EVENT_TYPE_IMPRESSION, event_time=stamp, ad_id="a")
        for e in event_ids
    ]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return events_pb2_grpc.EventServiceStub(channel).Track(
            pb.TrackRequest(events=events), timeout=10
        )


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    acknowledged: list[str] = []
    for round_ in range(5):
        proc, port = start(landing)
        try:
            ids = [f"k{round_}-{i}" for i in range(50)]
            reply = track(port, ids)
            assert reply.accepted_count == 50
            acknowledged += ids
            proc.send_signal(signal.SIGKILL)  # right after the acknowledgement
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
    rows = [
        json.loads(line)
        for path in landing.glob("date=*/hour=*/*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert sorted(r["event_id"] for r in rows) == sorted(acknowledged)
    proc, port = start(landing)
    try:
        replay = track(port, acknowledged[:10])
        assert {r.status for r in replay.results} == {pb.EVENT_STATUS_DUPLICATE}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
