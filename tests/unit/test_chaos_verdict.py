"""Tolerances (and agreement with chaoslib), the per-probe row, the drill verdict, and the
percentile and success-ratio helpers."""

from __future__ import annotations

import math
from typing import Any

import pytest
from chaoslib.hypothesis import within_tolerance as chaoslib_within

from chaos.verdict import (
    ProbeRow,
    Verdict,
    coalesce_windows,
    describe_tolerance,
    overall,
    percentile,
    probe_row,
    success_ratio,
    within,
)

pytestmark = pytest.mark.unit

RATIO = {"type": "range", "range": [0.99, 1.0]}


@pytest.mark.parametrize(
    ("value", "tolerance", "expected"),
    [
        (0, 0, True),
        (1, 0, False),
        ("ok", "ok", True),
        ("OK", "ok", False),
        (True, True, True),
        (False, True, False),
        # [low, high] is inclusive at both ends.
        (0, [0, 5], True),
        (5, [0, 5], True),
        (-1, [0, 5], False),
        (6, [0, 5], False),
        (0.99, [0.99, 1.0], True),
        (0.9899, [0.99, 1.0], False),
        (0.99, RATIO, True),
        (1.0, RATIO, True),
        (0.98999, RATIO, False),
        (1.0001, RATIO, False),
        ({"ratio": 0.995}, {**RATIO, "target": "ratio"}, True),
        ({"ratio": 0.5}, {**RATIO, "target": "ratio"}, False),
        ("ok", {"type": "regex", "pattern": "^ok$"}, True),
        ("not ok", {"type": "regex", "pattern": "^ok$"}, False),
        ({"state": "ready"}, {"type": "regex", "pattern": "ready", "target": "state"}, True),
    ],
)
def test_within(value: object, tolerance: object, expected: bool) -> None:
    assert within(value, tolerance) is expected


@pytest.mark.parametrize(
    ("value", "tolerance"),
    [
        ("a", [0, 1]),  # chaoslib raises TypeError
        (None, RATIO),  # chaoslib raises TypeError
        (math.nan, RATIO),  # chaoslib raises decimal.InvalidOperation
        ({"other": 1.0}, {**RATIO, "target": "ratio"}),  # falls back to the dict itself
        (5, {"type": "regex", "pattern": "5"}),  # not a string
        ("abc", RATIO),  # chaoslib: False, "range check expects a number value"
    ],
)
def test_incomparable_value_is_not_within(value: object, tolerance: object) -> None:
    assert within(value, tolerance) is False


@pytest.mark.parametrize(
    ("value", "tolerance"),
    [
        (0, 0),
        (1, 0),
        (0.0, 0),
        ("ok", "ok"),
        (False, True),
        (0.99, [0.99, 1.0]),
        (1.01, [0.99, 1.0]),
        (0.99, RATIO),
        (0.98999, RATIO),
        ("0.995", RATIO),  # chaoslib reads a numeric string as a Decimal
        ("abc", RATIO),
        ({"ratio": 0.995}, {**RATIO, "target": "ratio"}),
        ("ok", {"type": "regex", "pattern": "^ok$"}),
        ("ko", {"type": "regex", "pattern": "^ok$"}),
        # The surprises, mirrored on purpose so our table agrees with the journal:
        (1, True),  # bool is an int: 1 == True
        (True, [0, 5]),  # True <= 5
        (True, RATIO),  # Decimal(True) == 1
        ({"status": 200}, 200),  # HTTP provider results compare their status
        ({"status": 250}, [200, 299]),  # ... by membership, not as a range
    ],
)
def test_within_agrees_with_chaoslib(value: object, tolerance: object) -> None:
    assert within(value, tolerance) is bool(chaoslib_within(tolerance, value))


@pytest.mark.parametrize(
    "tolerance",
    [
        0.5,  # chaoslib has no float case: it silently returns None (never met)
        None,
        [1, 2, 3],  # chaoslib: membership; not a form we use
        [2, 1],
        [0, "1"],
        [False, True],
        {"type": "range"},
        {"type": "range", "range": [1.0, 0.0]},
        {"type": "regex", "pattern": "("},
        {"type": "regex"},
        {"type": "probe", "provider": {"type": "python", "module": "m", "func": "f"}},
        {"type": "jsonpath", "path": "$.a"},
        {"type": "range", "range": [0, 1], "target": 3},
        {},
    ],
)
def test_unsupported_tolerance_is_refused_by_name(tolerance: object) -> None:
    with pytest.raises(ValueError, match="tolerance") as caught:
        within(1, tolerance)
    assert repr(tolerance) in str(caught.value)


@pytest.mark.parametrize(
    ("tolerance", "text"),
    [
        (0, "== 0"),
        (True, "== True"),
        ("ok", "== 'ok'"),
        ([0.99, 1.0], "in [0.99, 1.0]"),
        (RATIO, "in [0.99, 1.0]"),
        ({**RATIO, "target": "ratio"}, "ratio in [0.99, 1.0]"),
        ({"type": "regex", "pattern": "^ok$"}, "matches /^ok$/"),
    ],
)
def test_describe_tolerance(tolerance: object, text: str) -> None:
    assert describe_tolerance(tolerance) == text


def test_out_of_tolerance_only_during_is_not_ok() -> None:
    row = probe_row("success_ratio", RATIO, {"before": 1.0, "during": 0.97, "after": 1.0})
    assert not row.ok
    assert row.note == "out of tolerance during"
    assert (row.before, row.during, row.after) == (1.0, 0.97, 1.0)


def test_every_phase_within_is_ok() -> None:
    row = probe_row("success_ratio", RATIO, {"before": 1.0, "during": 0.995, "after": 1.0})
    assert row.ok
    assert row.note == ""


def test_missing_required_measurement_is_not_ok() -> None:
    row = probe_row("success_ratio", RATIO, {"before": 1.0, "after": 1.0})
    assert not row.ok
    assert "not measured during" in row.note


def test_no_calls_in_a_phase_is_not_ok() -> None:
    values = {"before": success_ratio(10, 10), "during": success_ratio(0, 0), "after": 1.0}
    assert not probe_row("success_ratio", RATIO, values).ok


def test_restricted_phases_judge_only_those() -> None:
    recovery = {"type": "range", "range": [0, 30]}
    assert probe_row("recovery_s", recovery, {"after": 12.0}, phases=("after",)).ok
    assert not probe_row("recovery_s", recovery, {"after": 31.0}, phases=("after",)).ok
    allowed_dip = probe_row(
        "success_ratio", RATIO, {"before": 1.0, "during": 0.5, "after": 1.0}, ("before", "after")
    )
    assert allowed_dip.ok
    assert allowed_dip.note == "not judged during"


@pytest.mark.parametrize(
    ("values", "phases"),
    [({"durring": 1.0}, ("before", "during", "after")), ({"after": 1.0}, ("later",)), ({}, ())],
)
def test_unknown_phase_is_an_error(values: dict[str, object], phases: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="phases must be among"):
        probe_row("p", RATIO, values, phases)


def test_probe_row_round_trips_as_dict() -> None:
    row = probe_row("p99_ms", [0, 250], {"before": 10.0, "during": 300.0, "after": 12.0})
    assert ProbeRow.from_dict(row.to_dict()) == row
    assert row.to_dict()["ok"] is False


OK_ROW = ProbeRow("a", 0, 0, 0, 0, ok=True)
BAD_ROW = ProbeRow("b", 0, 0, 1, 0, ok=False, note="out of tolerance during")


@pytest.mark.parametrize(
    ("rows", "kwargs", "expected"),
    [
        ([OK_ROW], {}, Verdict.PASSED),
        ([OK_ROW, BAD_ROW], {}, Verdict.DEVIATED),
        ([OK_ROW], {"restored": False}, Verdict.DEVIATED),
        ([], {}, Verdict.DEVIATED),
        ([OK_ROW], {"aborted": True}, Verdict.ABORTED),
        ([], {"refused": True}, Verdict.REFUSED),
        ([OK_ROW], {"error": "action kill-node failed"}, Verdict.ERROR),
        ([OK_ROW], {"error": ""}, Verdict.ERROR),
        ([OK_ROW], {"interrupted": True}, Verdict.INTERRUPTED),
        # Precedence: refused > interrupted > error > aborted > deviated.
        ([BAD_ROW], {"refused": True, "interrupted": True, "error": "x"}, Verdict.REFUSED),
        ([BAD_ROW], {"interrupted": True, "error": "x", "aborted": True}, Verdict.INTERRUPTED),
        ([BAD_ROW], {"error": "x", "aborted": True}, Verdict.ERROR),
        ([BAD_ROW], {"aborted": True, "restored": False}, Verdict.ABORTED),
    ],
)
def test_overall(rows: list[ProbeRow], kwargs: dict[str, Any], expected: Verdict) -> None:
    assert overall(rows, **kwargs) is expected


def test_percentile_nearest_rank() -> None:
    hundred = [float(x) for x in range(100, 0, -1)]  # unsorted on purpose
    assert percentile(hundred, 99) == 99.0  # floats would make 0.99 * 100 round up to 100
    assert percentile(hundred, 100) == 100.0
    assert percentile(hundred, 50) == 50.0
    assert percentile(hundred, 0) == 1.0
    assert percentile([float(x) for x in range(1, 1001)], 99.9) == 999.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 99) == 0.0


@pytest.mark.parametrize("q", [-1, 100.5, math.nan])
def test_percentile_refuses_q_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match="percentile q"):
        percentile([1.0], q)


def test_success_ratio() -> None:
    assert success_ratio(99, 100) == 0.99
    assert success_ratio(0, 0) is None
    with pytest.raises(ValueError, match=r"ok \(3\) <= total \(2\)"):
        success_ratio(3, 2)


@pytest.mark.parametrize(
    ("windows", "expected"),
    [
        # latency-loss in CI: latency, latency + loss, 0.1 s of latency before its removal
        ([(8.3, 18.3), (18.3, 38.3), (38.3, 38.4)], [(8.3, 18.3), (18.3, 38.4)]),
        ([(5.0, 5.2), (5.2, 15.0)], [(5.0, 15.0)]),  # a short first window joins the next
        ([(5.0, 5.2), (9.0, 15.0)], [(5.0, 5.2), (9.0, 15.0)]),  # not touching: kept apart
        ([(8.1, 23.1), (23.1, 33.1)], [(8.1, 23.1), (23.1, 33.1)]),  # zone-out: both long
        ([], []),
    ],
)
def test_a_fault_window_too_short_to_judge_joins_the_one_it_touches(
    windows: list[tuple[float, float]], expected: list[tuple[float, float]]
) -> None:
    assert coalesce_windows(windows) == expected
