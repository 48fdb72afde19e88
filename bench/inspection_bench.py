"""The gateway's personal-data inspection of PUBLIC requests: its CPU per call, in one run,
beside the cost of what the gateway does to every call anyway (parsing nothing: the raw
first look) and against the gateway's measured CPU per call.

    python -m bench.inspection_bench [--rounds 2000]

Cases: a Rank request of 40 candidates and one of 1,000 and a Track batch of 10 events, all
clean, with hex ids that have no 10 digits in a row (only the raw first look runs); the same
Track batch with one id that has such a run (the first look suspects it: full parse and
walk, then let through); and the 40-candidate Rank with an e-mail address in its last
candidate (full parse and walk, then refused).
Medians of 7 repetitions of `--rounds` calls each; results in bench/results/inspection.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from isthmus.ads.v1 import ads_pb2
from isthmus.events.v1 import events_pb2
from services.contract.descriptors import load_descriptor_set, method_table
from services.core.errors import InvalidArgument
from services.gateway.inspection import RequestInspector

RESULTS = Path(__file__).with_name("results") / "inspection.json"
GATEWAY_RESULTS = Path(__file__).with_name("results") / "gateway.json"


def rank(candidates: int, personal: bool = False) -> bytes:
    request = ads_pb2.RankRequest(
        request_id=hex_id(),
        pseudonymous_user_id="p_" + hex_id()[:12],
        context=ads_pb2.RankContext(placement_id="home-top", slot_count=4),
        candidates=[
            ads_pb2.Candidate(ad_id=f"ad-{i}", campaign_id=f"camp-{i % 12}", cpc_bid_micros=5 + i)
            for i in range(candidates)
        ],
    )
    if personal:
        request.candidates[-1].campaign_id = "alice@example.com"
    return request.SerializeToString()


def hex_id(long_digit_run: bool = False) -> str:
    """A uuid4 hex id; with `long_digit_run` one whose 10 digits in a row make the raw first
    look suspect it (about 7% of uuid4 hex ids have such a run), else one without."""
    while True:
        value = uuid.uuid4().hex
        if long_digit_run:
            return "0123456789" + value[10:]
        if not re.search(r"[0-9]{10}", value):
            return value


def track(events: int, long_digit_run: bool = False) -> bytes:
    return events_pb2.TrackRequest(
        events=[
            events_pb2.Event(
                event_id=hex_id(long_digit_run and i == 0),
                type=events_pb2.EVENT_TYPE_IMPRESSION,
                pseudonymous_user_id="p_" + hex_id()[:12],
                rank_request_id=hex_id(),
                ad_id=f"ad-{i}",
                campaign_id="camp-1",
                placement_id="home-top",
                model_version="ctr-20261130",
            )
            for i in range(events)
        ]
    ).SerializeToString()


def per_call_us(inspector: RequestInspector, method: Any, raw: bytes, rounds: int) -> float:
    runs = []
    for _ in range(7):
        started = time.process_time()
        for _ in range(rounds):
            with contextlib.suppress(InvalidArgument):
                inspector.check(method, raw)
        runs.append((time.process_time() - started) / rounds * 1e6)
    return round(statistics.median(runs), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    descriptors = load_descriptor_set()
    methods = method_table(descriptors)
    inspector = RequestInspector(descriptors)
    rank_method = methods["/isthmus.ads.v1.AdService/Rank"]
    track_method = methods["/isthmus.events.v1.EventService/Track"]
    cases = {
        "rank_40_clean": (rank_method, rank(40)),
        "rank_1000_clean": (rank_method, rank(1000)),
        "track_10_clean": (track_method, track(10)),
        "track_10_clean_one_id_with_10_digit_run": (track_method, track(10, True)),
        "rank_40_with_email_refused": (rank_method, rank(40, personal=True)),
    }
    loadavg = os.getloadavg()
    results = {
        name: {
            "request_bytes": len(raw),
            "us_per_call": per_call_us(inspector, method, raw, max(args.rounds // 10, 50))
            if "1000" in name
            else per_call_us(inspector, method, raw, args.rounds),
        }
        for name, (method, raw) in cases.items()
    }
    gateway = json.loads(GATEWAY_RESULTS.read_text())["previous_quiet_machine"]["rps_c32"]
    gateway_us = round(1e6 / gateway["gateway"], 1)  # one gateway process at full CPU
    for row in results.values():
        row["share_of_gateway_cpu_per_call"] = round(row["us_per_call"] / gateway_us, 4)
    out = {
        "loadavg_1_5_15": [round(x, 2) for x in loadavg],
        "gateway_cpu_us_per_call": gateway_us,
        "gateway_cpu_source": "bench/results/gateway.json previous_quiet_machine: "
        "1 process at 1355 calls/s",
        "cases": results,
        "method": "process CPU time per inspector.check, median of 7 repetitions",
    }
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
