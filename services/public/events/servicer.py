"""EventService gRPC adapter: judge each event, write the new good ones durably, answer."""

from __future__ import annotations

import time

import grpc

from isthmus.events.v1 import events_pb2, events_pb2_grpc
from services.core.blocking import BlockingPool
from services.core.errors import InvalidArgument
from services.public.events.landing import LandingLog
from services.public.events.validation import MAX_BATCH, event_problem, to_record

ACCEPTED, DUPLICATE, REJECTED = (
    events_pb2.EVENT_STATUS_ACCEPTED,
    events_pb2.EVENT_STATUS_DUPLICATE,
    events_pb2.EVENT_STATUS_REJECTED,
)


class EventServicer(events_pb2_grpc.EventServiceServicer):
    def __init__(
        self, log: LandingLog, pool: BlockingPool, pseudonym_check_key: bytes | None = None
    ) -> None:
        self._log = log
        self._pool = pool
        self._check_key = pseudonym_check_key

    async def Track(
        self, request: events_pb2.TrackRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.TrackResponse:
        if not request.events:
            raise InvalidArgument.field("events", "at least one event is required")
        if len(request.events) > MAX_BATCH:
            raise InvalidArgument.field("events", f"at most {MAX_BATCH} per call")
        now = time.time()
        results = [events_pb2.EventResult(event_id=e.event_id) for e in request.events]
        fresh: dict[str, int] = {}
        for i, event in enumerate(request.events):
            problem = event_problem(event, now, self._check_key)
            if problem:
                results[i].status, results[i].reason = REJECTED, problem
            elif event.event_id in fresh:
                results[i].status = DUPLICATE  # repeated within the batch
            else:
                fresh[event.event_id] = i
        seen = await self._pool.run(context, self._log.known, list(fresh))
        records = []
        for event_id, i in fresh.items():
            if event_id in seen:
                results[i].status = DUPLICATE
            else:
                results[i].status = ACCEPTED
                records.append(to_record(request.events[i], now))
        if records:
            await self._pool.run(context, self._log.append, records, now)
        rejected = sum(r.status == REJECTED for r in results)
        return events_pb2.TrackResponse(
            results=results, accepted_count=len(results) - rejected, rejected_count=rejected
        )
