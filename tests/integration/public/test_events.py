"""EventService on a real server: per-event verdicts, durable partitioned files, replays."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from isthmus.common.v1 import common_pb2
from isthmus.events.v1 import events_pb2 as pb
from isthmus.events.v1 import events_pb2_grpc
from services.core import pseudonym
from services.core.secret_ref import SecretRef
from services.public.events.app import build_server
from services.public.events.config import EventsConfig

CHECK_KEY = b"c" * 32
USER = pseudonym.mint(b"k" * 32, CHECK_KEY, "u_1")  # as the private zone mints them


def event(event_id: str, **fields: Any) -> pb.Event:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromSeconds(int(time.time()))
    values: dict[str, Any] = {
        "event_id": event_id,
        "type": pb.EVENT_TYPE_CLICK,
        "event_time": stamp,
        "ad_id": "ad-1",
        "pseudonymous_user_id": USER,
        "campaign_id": "c-1",
        "position": 1,
    }
    values.update(fields)
    return pb.Event(**values)


def landed(root: Path) -> list[dict[str, Any]]:
    """Every record in the log's committed partitions (a crashed write only leaves a file in
    _incoming/, which is not a partition)."""
    rows = []
    for path in sorted(root.glob("date=*/hour=*/*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    return rows


@pytest.fixture
def events_server(loop_thread: Any, tmp_path: Path) -> Any:
    async def start() -> Any:
        server, port, cleanup = build_server(EventsConfig(landing_dir=tmp_path / "landing"))
        await server.start()
        return server, port, cleanup

    server, port, cleanup = loop_thread.run(start())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield events_pb2_grpc.EventServiceStub(channel), tmp_path / "landing"
    channel.close()
    loop_thread.run(server.stop(0))
    cleanup()


def test_good_events_are_kept_and_bad_ones_rejected_one_by_one(events_server: Any) -> None:
    stub, root = events_server
    far_future = timestamp_pb2.Timestamp(seconds=int(time.time()) + 3600)
    reply = stub.Track(
        pb.TrackRequest(
            events=[
                event("e-1"),
                event("bad id!"),
                event("e-2", type=pb.EVENT_TYPE_UNSPECIFIED),
                event("e-3", event_time=far_future),
                event(
                    "e-4", conversion_value=common_pb2.Money(currency_code="EUR", amount_minor=5)
                ),
                event(
                    "e-5",
                    type=pb.EVENT_TYPE_CONVERSION,
                    conversion_value=common_pb2.Money(currency_code="EUR", amount_minor=1999),
                ),
            ]
        )
    )
    verdicts = [(r.event_id, pb.EventStatus.Name(r.status), r.reason) for r in reply.results]
    assert verdicts == [
        ("e-1", "EVENT_STATUS_ACCEPTED", ""),
        (
            "bad id!",
            "EVENT_STATUS_REJECTED",
            "event_id: must be 1 to 128 characters of [A-Za-z0-9._:-]",
        ),
        ("e-2", "EVENT_STATUS_REJECTED", "type: is required"),
        ("e-3", "EVENT_STATUS_REJECTED", "event_time: is more than 300 s in the future"),
        ("e-4", "EVENT_STATUS_REJECTED", "conversion_value: only for EVENT_TYPE_CONVERSION"),
        ("e-5", "EVENT_STATUS_ACCEPTED", ""),
    ]
    assert (reply.accepted_count, reply.rejected_count) == (2, 4)
    rows = landed(root)
    assert [r["event_id"] for r in rows] == ["e-1", "e-5"]
    assert rows[1]["conversion_value_minor"] == 1999
    assert list((root / "_incoming").iterdir()) == []


def test_replays_are_harmless(events_server: Any) -> None:
    stub, root = events_server
    first = stub.Track(pb.TrackRequest(events=[event("r-1"), event("r-2"), event("r-1")]))
    assert [r.status for r in first.results] == [
        pb.EVENT_STATUS_ACCEPTED,
        pb.EVENT_STATUS_ACCEPTED,
        pb.EVENT_STATUS_DUPLICATE,
    ]
    again = stub.Track(pb.TrackRequest(events=[event("r-2"), event("r-3")]))
    assert [r.status for r in again.results] == [
        pb.EVENT_STATUS_DUPLICATE,
        pb.EVENT_STATUS_ACCEPTED,
    ]
    assert sorted(r["event_id"] for r in landed(root)) == ["r-1", "r-2", "r-3"]


def test_empty_and_oversized_batches_are_invalid(events_server: Any) -> None:
    stub, _ = events_server
    for request, message in (
        (pb.TrackRequest(), "events: at least one event is required"),
        (pb.TrackRequest(events=[event(f"x-{i}") for i in range(1001)]), "events: at most 1000"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            stub.Track(request)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert message in err.value.details()


def test_an_event_carrying_personal_data_is_rejected_and_never_lands(events_server: Any) -> None:
    """Defence in depth behind the gateway's door: the event service itself refuses a value
    shaped like an e-mail address or a phone number, naming the field, not the value."""
    stub, root = events_server
    reply = stub.Track(
        pb.TrackRequest(
            events=[
                event("e-1", pseudonymous_user_id="alice@example.com"),
                event("e-2", placement_id="13800138000"),
                event("e-3"),
            ]
        )
    )
    verdicts = [(r.event_id, r.status, r.reason) for r in reply.results]
    assert [(e, s) for e, s, _ in verdicts] == [
        ("e-1", pb.EVENT_STATUS_REJECTED),
        ("e-2", pb.EVENT_STATUS_REJECTED),
        ("e-3", pb.EVENT_STATUS_ACCEPTED),
    ]
    assert verdicts[0][2].startswith("pseudonymous_user_id: looks like an e-mail address")
    assert verdicts[1][2].startswith("placement_id: looks like a phone number")
    assert "alice" not in verdicts[0][2]
    assert "13800138000" not in verdicts[1][2]
    landed_text = "".join(p.read_text() for p in root.rglob("*.jsonl"))
    assert "alice@example.com" not in landed_text
    assert "13800138000" not in landed_text
    assert [r["event_id"] for r in landed(root)] == ["e-3"]


def test_a_pseudonymous_id_the_private_zone_did_not_mint_is_rejected(
    loop_thread: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event service's own check (behind the gateway's): the id's shape always, and with
    the check key, that the private zone minted it; the reason never repeats the value."""
    monkeypatch.setenv("ISTHMUS_TEST_CHECK_KEY", CHECK_KEY.hex())
    config = EventsConfig(
        landing_dir=tmp_path / "landing",
        pseudonym_check_key=SecretRef(env="ISTHMUS_TEST_CHECK_KEY"),
    )

    async def start() -> Any:
        server, port, cleanup = build_server(config)
        await server.start()
        return server, port, cleanup

    server, port, cleanup = loop_thread.run(start())
    forged = pseudonym.mint(b"k" * 32, b"x" * 32, "u_1")  # right shape, wrong check key
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = events_pb2_grpc.EventServiceStub(channel).Track(
                pb.TrackRequest(
                    events=[
                        event("e-1", pseudonymous_user_id="u_1234"),
                        event("e-2", pseudonymous_user_id=forged),
                        event("e-3"),
                        event("e-4", pseudonymous_user_id=""),  # anonymous
                    ]
                )
            )
    finally:
        loop_thread.run(server.stop(0))
        cleanup()
    verdicts = [(r.event_id, r.status, r.reason) for r in reply.results]
    assert [s for _, s, _ in verdicts] == [
        pb.EVENT_STATUS_REJECTED,
        pb.EVENT_STATUS_REJECTED,
        pb.EVENT_STATUS_ACCEPTED,
        pb.EVENT_STATUS_ACCEPTED,
    ]
    assert verdicts[0][2].startswith("pseudonymous_user_id: is not a pseudonymous id")
    assert verdicts[1][2] == (
        "pseudonymous_user_id: fails its check: not an id the private zone minted"
    )
    assert "u_1234" not in verdicts[0][2]
    assert forged not in verdicts[1][2]
    assert sorted(r["event_id"] for r in landed(tmp_path / "landing")) == ["e-3", "e-4"]
