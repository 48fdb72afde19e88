"""The gateway's personal-data inspection of PUBLIC requests: its CPU per call, in one run,
beside the cost of what the gateway does to every call anyway (parsing nothing: the raw
first look) and against the gateway's measured CPU per call.

    python -m bench.inspection_bench [--rounds 2000]

Cases: a Rank request of 40 candidates and one of 1,000 and a Track batch of 10 events, all
clean, with hex ids that have no 10 digits in a row and pseudonymous ids minted as the
private zone mints them; the same Track batch with one id that has such a run (the first
look suspects it: the personal-shape walk runs too); and the 40-candidate Rank with an
e-mail address in its last candidate (refused). Each request type carries a pseudonymous id,
so each is parsed and its ids checked: with the check key (as `isthmus up` runs) and, for the
clean cases, without it (shape only), and with ids seen before (the inspector's cache of
verified ids). Beside them, in the same run, the raw first look alone (`suspect`): all the
inspection cost a clean request before pseudonymous ids were checked.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isthmus.ads.v1 import ads_pb2
from isthmus.events.v1 import events_pb2
from services.contract.descriptors import load_descriptor_set, method_table
from services.core import pseudonym
from services.core.errors import InvalidArgument
from services.core.pii_shapes import suspect
from services.gateway.inspection import RequestInspector

RESULTS = Path(__file__).with_name("results") / "inspection.json"
GATEWAY_RESULTS = Path(__file__).with_name("results") / "gateway.json"


CHECK_KEY = b"c" * 32


def user() -> str:
    return pseudonym.mint(b"k" * 32, CHECK_KEY, hex_id())


def rank(candidates: int, personal: bool = False) -> bytes:
    request = ads_pb2.RankRequest(
        request_id=hex_id(),
        pseudonymous_user_id=user(),
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
                pseudonymous_user_id=user(),
                rank_request_id=hex_id(),
                ad_id=f"ad-{i}",
                campaign_id="camp-1",
                placement_id="home-top",
                model_version="ctr-20261130",
            )
            for i in range(events)
        ]
    ).SerializeToString()


def per_call_us(
    check: Callable[[bytes], Any],
    raw: bytes | list[bytes],
    rounds: int,
    fresh: Callable[[], Callable[[bytes], Any]] | None = None,
) -> float:
    """CPU per call of `check` over `rounds` calls (cycling through `raw` when a list), the
    median of 7 repetitions; `fresh` makes a new `check` for each repetition (no cache
    carried over)."""
    raws = raw if isinstance(raw, list) else [raw]
    runs = []
    for _ in range(7):
        if fresh is not None:
            check = fresh()
        started = time.process_time()
        for i in range(rounds):
            with contextlib.suppress(InvalidArgument):
                check(raws[i % len(raws)])
        runs.append((time.process_time() - started) / rounds * 1e6)
    return round(statistics.median(runs), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    descriptors = load_descriptor_set()
    methods = method_table(descriptors)
    keyed = RequestInspector(descriptors, CHECK_KEY)
    shape_only = keyed.with_check_key(None)
    rank_method = methods["/isthmus.ads.v1.AdService/Rank"]
    track_method = methods["/isthmus.events.v1.EventService/Track"]
    cases: dict[str, tuple[Any, Callable[[], bytes]]] = {
        "rank_40_clean": (rank_method, lambda: rank(40)),
        "rank_1000_clean": (rank_method, lambda: rank(1000)),
        "track_10_clean": (track_method, lambda: track(10)),
        "track_10_clean_one_id_with_10_digit_run": (track_method, lambda: track(10, True)),
        "rank_40_with_email_refused": (rank_method, lambda: rank(40, personal=True)),
    }
    loadavg = os.getloadavg()
    results = {}
    for name, (method, build) in cases.items():
        rounds = max(args.rounds // 10, 50) if "1000" in name else args.rounds
        distinct = [build() for _ in range(rounds)]  # every pseudonymous id new

        def check_with(inspector: RequestInspector, m: Any = method) -> Callable[[bytes], Any]:
            return lambda r: inspector.check(m, r)

        def cold() -> Callable[[bytes], Any]:  # an inspector that has verified nothing yet
            return check_with(keyed.with_check_key(None).with_check_key(CHECK_KEY))

        row = {
            "request_bytes": len(distinct[0]),
            "us_per_call": per_call_us(cold(), distinct, rounds, fresh=cold),
        }
        if "clean" in name:
            row["us_per_call_ids_seen_before"] = per_call_us(check_with(keyed), distinct[0], rounds)
            row["us_per_call_shape_only"] = per_call_us(check_with(shape_only), distinct, rounds)
            row["us_per_call_raw_first_look_only"] = per_call_us(suspect, distinct, rounds)
        results[name] = row
    gateway_us = json.loads(GATEWAY_RESULTS.read_text())["comparison"]["cpu_us_per_call"]["gateway"]
    for row in results.values():
        row["share_of_gateway_cpu_per_call"] = round(row["us_per_call"] / gateway_us, 4)
        if "us_per_call_raw_first_look_only" in row:
            row["added_share_by_pseudonym_checks"] = round(
                (row["us_per_call"] - row["us_per_call_raw_first_look_only"]) / gateway_us, 4
            )
    out = {
        "loadavg_1_5_15": [round(x, 2) for x in loadavg],
        "gateway_cpu_us_per_call": gateway_us,
        "gateway_cpu_source": "bench/results/gateway.json comparison.cpu_us_per_call.gateway "
        "(the gateway process's CPU per Rank answered at 32 in flight)",
        "cases": results,
        "method": "process CPU time per inspector.check, median of 7 repetitions, all in one "
        "run: us_per_call = with the check key, every id new (no cache hit: the worst case); "
        "ids_seen_before = the same request again (the verified-id cache hits); shape_only = "
        "without the check key; raw_first_look_only = `suspect` alone, all a clean request "
        "cost before pseudonymous ids were checked",
    }
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
