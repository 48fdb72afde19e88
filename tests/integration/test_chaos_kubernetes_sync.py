"""The Kubernetes forms of sync-killed and sync-partition (chaos/kubernetes/jobs.py), run the
way an SRE runs them (`isthmus chaos run NAME --target kubernetes`: Chaos Toolkit, the
form's runtime settings) against the FAKE API server (tests/support/fake_kube_api.py: the
real API's paths and shapes; a Job controller that gives each try a pod and counts a
deleted pod against backoffLimit; Chaos Mesh injecting into the pods running when a fault is
created). No Kubernetes API server runs on this machine. Exactly once under real kills is
tests/system/test_sync_kill.py's, which runs the same `isthmus sync audit`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos.kubernetes import jobs
from tests.support.fake_kube_api import FakeKubeApi

pytestmark = pytest.mark.integration
PRIVATE = "isthmus-private"
SYNC = {"app.kubernetes.io/instance": "isthmus", "app.kubernetes.io/component": "sync"}
SYNC_ARGS = ["sync", "events", "--topology", "/etc/isthmus/data/topology.yaml",
             "--private-config", "/etc/isthmus/data/private.yaml"]  # fmt: skip


@pytest.fixture
def sync_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeApi]:
    with FakeKubeApi(job_run_s=3.0) as fake:
        fake.add_cronjob(PRIVATE, "isthmus-sync", SYNC_ARGS, SYNC)
        monkeypatch.setenv("ISTHMUS_KUBE_API_URL", fake.url)
        monkeypatch.setenv("ISTHMUS_HOLD_S", "0")
        yield fake


def is_audit(job: dict[str, Any]) -> bool:
    return bool(job["spec"]["template"]["spec"]["containers"][0]["args"][1] == "audit")


def cronjob(api: FakeKubeApi) -> dict[str, Any]:
    found: dict[str, Any] = api.custom[("batch/v1", "cronjobs", PRIVATE, "isthmus-sync")]
    return found


def run(name: str, tmp_path: Path, **variables: Any) -> tuple[str, dict[str, Any]]:
    from chaos.kubernetes.run import run_form

    verdict, path = run_form(name, variables, tmp_path)
    journal: dict[str, Any] = json.loads(path.read_text())
    return verdict, journal


def test_a_job_from_the_cronjob_is_what_kubectl_create_job_from_makes() -> None:
    template = {
        "metadata": {"name": "isthmus-sync", "namespace": PRIVATE, "uid": "u-1"},
        "spec": {"jobTemplate": {"metadata": {"labels": SYNC, "annotations": {"a": "b"}},
                 "spec": {"backoffLimit": 2,
                          "template": {"spec": {"containers": [{"args": SYNC_ARGS}]}}}}},
    }  # fmt: skip
    job = jobs.job_from_cronjob(template, "isthmus-sync-killed", extra_retries=3)
    assert job["metadata"]["annotations"] == {
        "a": "b",
        "cronjob.kubernetes.io/instantiate": "manual",
    }
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("CronJob", "isthmus-sync", True)
    assert job["metadata"]["labels"] == {**SYNC, "isthmus.io/cronjob": "isthmus-sync"}
    assert job["spec"]["backoffLimit"] == 5
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == SYNC_ARGS
    assert template["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 2  # not mutated
    audit = jobs.job_from_cronjob(template, "a", jobs.audit_args(SYNC_ARGS), backoff_limit=0)
    assert audit["spec"]["backoffLimit"] == 0
    assert jobs.audit_args(SYNC_ARGS) == ["sync", "audit", *SYNC_ARGS[2:]]
    with pytest.raises(ValueError, match="not an `isthmus sync`"):
        jobs.audit_args(["gateway", "--config", "x"])


def test_the_last_finished_run_judges_the_steady_state_not_old_failures() -> None:
    def job(name: str, created: str, state: str, audit: bool = False) -> dict[str, Any]:
        labels = {"isthmus.io/audit": "true"} if audit else {}
        conditions = [{"type": state, "status": "True"}] if state else []
        return {
            "metadata": {"name": name, "creationTimestamp": created, "labels": labels,
                         "ownerReferences": [{"kind": "CronJob", "name": "isthmus-sync"}]},
            "status": {"conditions": conditions},
        }  # fmt: skip

    history = [
        job("old", "2026-11-30T01:00:00Z", "Failed"),
        job("newer", "2026-11-30T02:00:00Z", "Complete"),
        job("audit", "2026-11-30T03:00:00Z", "Failed", audit=True),  # not a sync run
        job("running", "2026-11-30T04:00:00Z", ""),
    ]
    last = jobs.last_finished_run(history, "isthmus-sync")
    assert last is not None
    assert last["metadata"]["name"] == "newer"
    assert jobs.running_runs(history, "isthmus-sync") == ["running"]
    assert jobs.last_finished_run(history, "another") is None


def test_sync_killed_deletes_the_running_pod_and_the_job_still_completes(
    sync_api: FakeKubeApi, tmp_path: Path
) -> None:
    verdict, journal = run("sync-killed", tmp_path, kills=2, running_s=0.3)
    assert verdict == "passed", journal
    suspend, start, kill, wait = journal["run"]
    assert suspend["output"] is True  # the drill held the schedule
    assert start["output"] == "isthmus-sync-killed"
    assert len(kill["output"]) == 2
    assert sync_api.deleted == kill["output"]
    assert wait["output"] == "Complete"
    created = [j["metadata"]["name"] for j in sync_api.jobs_created]
    assert created == ["isthmus-sync-audit", "isthmus-sync-killed", "isthmus-sync-audit"]
    assert sync_api.jobs_created[1]["spec"]["backoffLimit"] == 2 + 2  # its own, plus the kills
    assert sync_api.job(PRIVATE, "isthmus-sync-killed")["status"]["failed"] == 2  # type: ignore[index]
    audit = sync_api.jobs_created[2]
    assert is_audit(audit)
    assert audit["spec"]["backoffLimit"] == 0  # copies found once are found again
    assert audit["spec"]["template"]["metadata"]["labels"] == SYNC  # the sync's mounts, policies
    assert journal["rollbacks"][0]["output"] is True  # the schedule resumed
    assert cronjob(sync_api)["spec"]["suspend"] is False
    assert "isthmus.io/suspended-by-drill" not in cronjob(sync_api)["metadata"]["annotations"]


def test_a_schedule_held_before_the_drill_stays_held(sync_api: FakeKubeApi, tmp_path: Path) -> None:
    cronjob(sync_api)["spec"]["suspend"] = True  # an operator paused it
    verdict, journal = run("sync-killed", tmp_path, kills=1, running_s=0.3)
    assert verdict == "passed", journal
    assert journal["run"][0]["output"] is False
    assert journal["rollbacks"][0]["output"] is False
    assert cronjob(sync_api)["spec"]["suspend"] is True


def test_sync_killed_deviates_when_the_audit_finds_copies(
    sync_api: FakeKubeApi, tmp_path: Path
) -> None:
    audits: list[str] = []

    def result(job: dict[str, Any]) -> bool:  # the audit passes before the drill only
        if is_audit(job):
            audits.append(job["metadata"]["uid"])
            return len(set(audits)) == 1
        return True

    sync_api.job_result = result
    verdict, journal = run("sync-killed", tmp_path, kills=1, running_s=0.3)
    assert verdict == "deviated"
    after = journal["steady_states"]["after"]["probes"]
    assert [p["tolerance_met"] for p in after] == [True, False]


def test_sync_killed_deviates_when_the_kills_fail_the_job(
    sync_api: FakeKubeApi, tmp_path: Path
) -> None:
    """A sync that cannot resume (every try fails after a kill) fails its Job: seen."""
    sync_api.job_result = lambda job: is_audit(job)
    verdict, journal = run("sync-killed", tmp_path, kills=1, running_s=0.3)
    assert journal["run"][3]["output"] == "Failed"
    assert verdict == "deviated"
    after = journal["steady_states"]["after"]["probes"]
    assert [p["tolerance_met"] for p in after] == [False]  # Chaos Toolkit stops at the first


def test_kills_past_the_end_of_the_run_are_an_error_not_a_pass(sync_api: FakeKubeApi) -> None:
    sync_api.job_run_s = 0.3
    jobs.run_sync_job("short", "isthmus-sync", PRIVATE, api_url=sync_api.url)
    with pytest.raises(RuntimeError, match="finished after 0 of 2 kills"):
        jobs.kill_job_pods("short", 2, running_s=1.0, namespace=PRIVATE, api_url=sync_api.url)


def test_sync_partition_cuts_the_running_sync_pod_from_the_landing_and_lifts_it(
    sync_api: FakeKubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaos.kubernetes import faults

    created: list[dict[str, Any]] = []
    original = jobs.create_chaos

    def spy(*args: Any, **kwargs: Any) -> str:
        created.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(jobs, "create_chaos", spy)
    verdict, journal = run("sync-partition", tmp_path, landing_hosts="10.50.0.8, 10.50.0.9")
    assert verdict == "passed", journal
    assert [a["status"] for a in journal["run"]] == ["succeeded"] * 6
    assert created == [faults.landing_cut(PRIVATE, "isthmus", ["10.50.0.8", "10.50.0.9"], "30m")]
    assert created[0]["selector"]["labelSelectors"] == SYNC
    assert journal["run"][2]["output"] == 1  # Chaos Mesh injected the Job's running pod
    assert journal["run"][4]["output"] is True  # the method lifted a cut that existed
    assert journal["run"][5]["output"] == "Complete"
    assert sync_api.jobs_created[1]["spec"]["backoffLimit"] == 2 + 6
    assert not [k for k in sync_api.custom if k[0] == "chaos-mesh.org/v1alpha1"]


def test_a_cut_that_reaches_no_pod_fails_the_drill(sync_api: FakeKubeApi) -> None:
    sync_api.job_run_s = 0.2  # the Job is over before the cut: no running pod to cut off
    jobs.run_sync_job("gone", "isthmus-sync", PRIVATE, api_url=sync_api.url)
    jobs.wait_for_job("gone", PRIVATE, 30, api_url=sync_api.url)
    with pytest.raises(RuntimeError, match="no running pod"):
        jobs.cut_landing("10.50.0.8", "gone", PRIVATE, timeout_s=1, api_url=sync_api.url)


def test_an_interrupted_drill_still_lifts_its_cut_and_resumes_the_schedule(
    sync_api: FakeKubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form's `runtime.rollbacks.strategy: always` reaches chaoslib (it reads the
    strategy from the settings only): an interrupt during the hold still plays the
    rollbacks."""
    from chaos.kubernetes import actions

    def interrupted(seconds: float | str) -> float:
        raise KeyboardInterrupt  # what Ctrl-C raises

    monkeypatch.setattr(actions, "hold", interrupted)
    verdict, journal = run("sync-partition", tmp_path, landing_hosts="10.50.0.8")
    assert journal["status"] == "interrupted"
    assert verdict == "failed"
    assert [r["output"] for r in journal["rollbacks"]] == [True, True]  # cut lifted, resumed
    assert not [k for k in sync_api.custom if k[0] == "chaos-mesh.org/v1alpha1"]
    assert cronjob(sync_api)["spec"]["suspend"] is False


def test_isthmus_chaos_run_target_kubernetes_says_its_verdict(
    sync_api: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chaos.cli import main
    from chaos.kubernetes.run import verdict

    argv = ["run", "sync-killed", "--target", "kubernetes", "--report-dir", str(tmp_path)]
    assert main([*argv, "--var", "kills=1", "--var", "running_s=0.3"]) == 0
    assert "sync-killed (kubernetes): PASSED" in capsys.readouterr().out
    journal = json.loads((tmp_path / "sync-killed.kubernetes.journal.json").read_text())
    assert len(journal["run"][2]["output"]) == 1  # --var kills=1 reached the action

    sync_api.job_result = lambda job: is_audit(job)  # every sync try fails now
    assert main([*argv, "--var", "kills=1", "--var", "running_s=0.3"]) == 1
    assert "sync-killed (kubernetes): DEVIATED" in capsys.readouterr().out

    completed = {"status": "completed", "deviated": False}
    assert verdict({**completed, "run": [{"status": "succeeded"}]}) == "passed"
    assert verdict({**completed, "run": [{"status": "failed"}]}) == "failed"  # no fault made
    assert verdict({**completed, "deviated": True}) == "deviated"
    assert verdict({"status": "failed", "deviated": False}) == "failed"

    for bad, message in [
        (["run", "no-such-drill", "--target", "kubernetes"], "no Kubernetes form"),
        ([*argv, "--var", "nope=1"], "has no variable"),
        ([*argv, "--without", "retries"], "local target's"),
    ]:
        with pytest.raises(SystemExit):
            main(bad)
        assert message in capsys.readouterr().err
