"""`helm test`'s steady-state judgement (services/deploy/steady_state.py), on expositions
written the way the gateway's Prometheus endpoint writes them."""

from __future__ import annotations

from services.deploy.steady_state import (
    ClassWindow,
    class_window,
    increase,
    judge,
    parse,
    sensitive_on_public,
    total,
)

RANK = "isthmus.ads.v1.AdService/Rank"
PROFILE = "isthmus.profile.v1.ProfileService/GetProfile"


def exposition(calls: dict[tuple[str, str], float], attempts: dict[tuple[str, str], float]) -> str:
    lines = [
        "# HELP rpc_server_call_duration_seconds Duration of RPCs handled by this server.",
        "# TYPE rpc_server_call_duration_seconds histogram",
    ]
    for (method, code), n in calls.items():
        labels = f'rpc_method="{method}",rpc_response_status_code="{code}"'
        lines.append(f'rpc_server_call_duration_seconds_bucket{{{labels},le="+Inf"}} {n}')
        lines.append(f"rpc_server_call_duration_seconds_count{{{labels}}} {n}")
        lines.append(f"rpc_server_call_duration_seconds_sum{{{labels}}} {n * 0.01}")
    lines += [
        "# HELP isthmus_gateway_attempts_total Attempts on upstream clusters.",
        "# TYPE isthmus_gateway_attempts_total counter",
    ]
    for (cluster, method), n in attempts.items():
        lines.append(
            f'isthmus_gateway_attempts_total{{cluster="{cluster}",rpc_method="/{method}"}} {n}'
        )
    return "\n".join(lines) + "\n"


def test_parse_reads_calls_by_code_and_attempts_by_cluster() -> None:
    text = exposition({(RANK, "OK"): 7, (RANK, "UNAVAILABLE"): 2}, {("ads-public-a", RANK): 9})
    counters = parse(text)
    assert counters.calls == {(RANK, "OK"): 7.0, (RANK, "UNAVAILABLE"): 2.0}
    assert counters.attempts == {("ads-public-a", RANK): 9.0}  # leading slash dropped


def test_only_the_platforms_failures_count_against_the_ratio() -> None:
    window = parse(
        exposition(
            {
                (PROFILE, "OK"): 90,
                (PROFILE, "INVALID_ARGUMENT"): 5,  # the caller's mistake
                (PROFILE, "UNAUTHENTICATED"): 3,
                (PROFILE, "UNAVAILABLE"): 2,  # the platform's
                (RANK, "DEADLINE_EXCEEDED"): 1,
            },
            {},
        )
    )
    sensitive = class_window("SENSITIVE", window, [PROFILE])
    assert (sensitive.calls, sensitive.faults) == (100, 2)
    assert sensitive.success_ratio == 0.98
    assert class_window("PUBLIC", window, ["/" + RANK]).success_ratio == 0.0
    assert class_window("PUBLIC", window, ["nothing/Here"]).success_ratio is None


def test_increase_over_a_window_and_across_a_restart() -> None:
    before = parse(exposition({(RANK, "OK"): 100, (RANK, "UNAVAILABLE"): 4}, {}))
    after = parse(exposition({(RANK, "OK"): 130, (RANK, "UNAVAILABLE"): 4}, {}))
    assert increase(before, after).calls == {(RANK, "OK"): 30, (RANK, "UNAVAILABLE"): 0}
    restarted = parse(exposition({(RANK, "OK"): 12}, {}))  # counter went down: a new process
    assert increase(before, restarted).calls == {(RANK, "OK"): 12}
    assert increase(None, restarted).calls == {(RANK, "OK"): 12}  # a pod new in the window
    pods = total([after, restarted])
    assert pods.calls[(RANK, "OK")] == 142


def test_sensitive_attempts_on_public_clusters_are_found() -> None:
    counters = parse(
        exposition(
            {}, {("ads-public-a", RANK): 50, ("profile", PROFILE): 8, ("ads-public-b", PROFILE): 1}
        )
    )
    assert sensitive_on_public(counters, ["ads-public-a", "ads-public-b"], [PROFILE]) == 1
    assert sensitive_on_public(counters, ["ads-public-a"], [PROFILE]) == 0


def test_judge_deviates_on_a_low_ratio_a_leak_or_a_required_silence() -> None:
    healthy = [ClassWindow("PUBLIC", 1000, 0), ClassWindow("SENSITIVE", 200, 0)]
    assert all(ok for ok, _ in judge(healthy, 0, 0.999, require_calls=True))

    burning = [ClassWindow("PUBLIC", 1000, 2), ClassWindow("SENSITIVE", 200, 0)]
    verdicts = judge(burning, 0, 0.999, require_calls=False)
    assert [ok for ok, _ in verdicts] == [False, True, True]
    assert "0.998000 over 1000 calls (2 failed" in verdicts[0][1]

    assert not judge(healthy, 1, 0.999, require_calls=False)[-1][0]

    quiet = [ClassWindow("PUBLIC", 0, 0), ClassWindow("SENSITIVE", 10, 0)]
    assert judge(quiet, 0, 0.999, require_calls=False)[0] == (
        True,
        "PUBLIC success ratio: no calls in the window: not measured",
    )
    assert not judge(quiet, 0, 0.999, require_calls=True)[0][0]
