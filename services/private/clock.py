"""Time for the private zone: integer microseconds since the epoch, UTC."""

from __future__ import annotations

import time

from google.protobuf import timestamp_pb2


def now_us() -> int:
    return time.time_ns() // 1000


def to_timestamp(us: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(us)
    return stamp
