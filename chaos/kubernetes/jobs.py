"""The Spark sync on Kubernetes, for the sync drills' Kubernetes forms: run it now as a Job
from the chart's CronJob, kill its pods mid-run, wait for its outcome, and audit the
warehouse (`isthmus sync audit` as a Job of the same template: the warehouse lives on the
release's PersistentVolumeClaim, so only a pod of the release can read it).

    suspend_cronjob(cronjob, namespace)                     no scheduled run beside the drill's
    run_sync_job(job, cronjob, namespace, extra_retries)   kubectl create job --from=cronjob
    kill_job_pods(job, kills, running_s, namespace)         sync-killed
    cut_landing(hosts, job, namespace, release)             sync-partition
    wait_for_job(job, namespace, timeout_s)                 "Complete" or "Failed"
    resume_cronjob(cronjob, namespace)                      the rollback
    last_sync_succeeded(cronjob, namespace)                 probe: the last finished run did
    warehouse_exactly_once(cronjob, namespace)              probe: the audit Job's verdict

Connection arguments on every activity: `kubeconfig`, `context`, `api_url` (cluster.py).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from chaos.kubernetes import faults
from chaos.kubernetes.actions import create_chaos
from chaos.kubernetes.cluster import CHAOS_GROUP, CHAOS_VERSION, api_client, parse_hosts

JOB_NAME = "batch.kubernetes.io/job-name"  # the label the Job controller puts on its pods
CRONJOB = "isthmus.io/cronjob"  # ours, on the Jobs a drill creates
AUDIT = "isthmus.io/audit"  # on the audit's Jobs: not sync runs
SUSPENDED_BY = "isthmus.io/suspended-by-drill"  # on a CronJob a drill suspended
FINISHED = ("Complete", "Failed")


# ---- pure -------------------------------------------------------------------------------


def job_from_cronjob(
    cronjob: dict[str, Any],
    name: str,
    args: list[str] | None = None,
    extra_retries: int = 0,
    backoff_limit: int | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Job `kubectl create job NAME --from=cronjob/CRONJOB` would create (the template
    with its labels and annotations, the manual-instantiation annotation, the CronJob as its
    controlling owner), with the first container's `args` replaced when given, and
    `extra_retries` added to its backoffLimit (a pod a drill kills counts as a failed try,
    and the drill's kills must not use up the retries the Job has for its own failures) or
    `backoff_limit` instead of it."""
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    meta = cronjob["metadata"]
    spec = template["spec"]
    if backoff_limit is not None:
        spec["backoffLimit"] = int(backoff_limit)
    else:
        spec["backoffLimit"] = int(spec.get("backoffLimit", 6)) + int(extra_retries)
    spec.setdefault("ttlSecondsAfterFinished", 86400)
    if args is not None:
        spec["template"]["spec"]["containers"][0]["args"] = list(args)
    template_meta = template.get("metadata", {})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {
                **template_meta.get("labels", {}),
                CRONJOB: meta["name"],
                **(labels or {}),
            },
            "annotations": {
                **template_meta.get("annotations", {}),
                "cronjob.kubernetes.io/instantiate": "manual",
            },
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": spec,
    }


def audit_args(sync_args: list[str]) -> list[str]:
    """The sync CronJob's args with its job (`sync events ...`) replaced by `audit`: the same
    topology and config files, mounted the same way."""
    if len(sync_args) < 2 or sync_args[0] != "sync":
        raise ValueError(f"not an `isthmus sync` command line: {sync_args}")
    return ["sync", "audit", *sync_args[2:]]


def outcome(job: dict[str, Any]) -> str:
    """ "Complete", "Failed" or "" (still running), from the Job's conditions."""
    for condition in job.get("status", {}).get("conditions") or []:
        if condition.get("type") in FINISHED and condition.get("status") == "True":
            return str(condition["type"])
    return ""


def owned_by(job: dict[str, Any], cronjob: str) -> bool:
    return any(
        ref.get("kind") == "CronJob" and ref.get("name") == cronjob
        for ref in job.get("metadata", {}).get("ownerReferences") or []
    )


def is_audit(job: dict[str, Any]) -> bool:
    return (job.get("metadata", {}).get("labels") or {}).get(AUDIT) == "true"


def last_finished_run(jobs: list[dict[str, Any]], cronjob: str) -> dict[str, Any] | None:
    """The sync run (scheduled, or started by a drill; audits aside) of `cronjob` created
    last among those that have finished (pure)."""
    runs = [j for j in jobs if owned_by(j, cronjob) and not is_audit(j) and outcome(j)]
    return max(runs, key=lambda j: str(j["metadata"].get("creationTimestamp", "")), default=None)


def running_runs(jobs: list[dict[str, Any]], cronjob: str) -> list[str]:
    """Names of the sync runs of `cronjob` still running (pure)."""
    return [
        str(j["metadata"]["name"])
        for j in jobs
        if owned_by(j, cronjob) and not is_audit(j) and not outcome(j)
    ]


def injected(chaos: dict[str, Any]) -> int:
    """How many pods a Chaos Mesh object has injected its fault into (its status) (pure)."""
    records = (chaos.get("status", {}).get("experiment") or {}).get("containerRecords") or []
    return sum(1 for r in records if r.get("phase") == "Injected")


# ---- I/O --------------------------------------------------------------------------------


def _batch(kubeconfig: str, context: str, api_url: str) -> tuple[Any, Any]:
    from kubernetes import client

    api = api_client(kubeconfig, context, api_url)
    return client.BatchV1Api(api), api


def _plain(api: Any, obj: Any) -> dict[str, Any]:
    """A client model as the API's JSON (camelCase keys)."""
    return dict(api.sanitize_for_serialization(obj))


def run_sync_job(
    job: str,
    cronjob: str = "isthmus-sync",
    namespace: str = "isthmus-private",
    extra_retries: int | str = 0,
    args: list[str] | None = None,
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> str:
    """Start the CronJob's job now, as Job `job` (a finished one of that name, from an earlier
    drill, is deleted first), its backoffLimit raised by `extra_retries` (the kills a drill
    will make). Returns the Job's name."""
    batch, api = _batch(kubeconfig, context, api_url)
    template = _plain(api, batch.read_namespaced_cron_job(cronjob, namespace))
    _replace_job(
        batch, api, job, namespace, job_from_cronjob(template, job, args, int(extra_retries))
    )
    return job


def _replace_job(batch: Any, api: Any, name: str, namespace: str, body: dict[str, Any]) -> None:
    """Create Job `name` from `body`, deleting a finished one of that name first."""
    from kubernetes.client.exceptions import ApiException

    try:
        old = _plain(api, batch.read_namespaced_job(name, namespace))
        if not outcome(old):
            raise RuntimeError(f"Job {name} is still running: wait for it or delete it")
        batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise
    batch.create_namespaced_job(namespace, body)


def suspend_cronjob(
    cronjob: str = "isthmus-sync",
    namespace: str = "isthmus-private",
    timeout_s: float | str = 1800.0,
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> bool:
    """Hold the CronJob's schedule for the drill and wait for a scheduled run under way to
    end, so no scheduled sync runs beside the drill's (its `concurrencyPolicy: Forbid`
    counts only its own Jobs). Marks the CronJob, so `resume_cronjob` restores only what a
    drill suspended. Returns whether it suspended it (False: it was suspended already)."""
    batch, api = _batch(kubeconfig, context, api_url)
    current = _plain(api, batch.read_namespaced_cron_job(cronjob, namespace))
    changed = not current["spec"].get("suspend", False)
    if changed:
        batch.patch_namespaced_cron_job(
            cronjob,
            namespace,
            {"metadata": {"annotations": {SUSPENDED_BY: "true"}}, "spec": {"suspend": True}},
        )
    deadline = time.monotonic() + float(timeout_s)
    while running := running_runs(
        [_plain(api, j) for j in batch.list_namespaced_job(namespace).items], cronjob
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"sync run(s) {', '.join(running)} still running")
        time.sleep(1.0)
    return changed


def resume_cronjob(
    cronjob: str = "isthmus-sync",
    namespace: str = "isthmus-private",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> bool:
    """Undo `suspend_cronjob` (a rollback): the schedule resumes if a drill suspended it.
    Returns whether it did."""
    batch, api = _batch(kubeconfig, context, api_url)
    current = _plain(api, batch.read_namespaced_cron_job(cronjob, namespace))
    if (current["metadata"].get("annotations") or {}).get(SUSPENDED_BY) != "true":
        return False
    batch.patch_namespaced_cron_job(
        cronjob,
        namespace,
        {"metadata": {"annotations": {SUSPENDED_BY: None}}, "spec": {"suspend": False}},
    )
    return True


def _running_pod(core: Any, job: str, namespace: str) -> str | None:
    pods = core.list_namespaced_pod(namespace, label_selector=f"{JOB_NAME}={job}").items
    running = [p for p in pods if p.status and p.status.phase == "Running"]
    return str(running[0].metadata.name) if running else None


def kill_job_pods(
    job: str,
    kills: int | str = 3,
    running_s: float | str = 20.0,
    namespace: str = "isthmus-private",
    timeout_s: float | str = 900.0,
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> list[str]:
    """sync-killed on Kubernetes: `kills` times, wait for the Job's pod to have run
    `running_s` seconds (past the JVM's start, into a micro-batch), then delete it with no
    grace period -- a node lost mid-batch. The Job controller starts a new pod, which
    resumes from the checkpoint on the volume. Returns the pods killed."""
    from kubernetes import client

    core = client.CoreV1Api(api_client(kubeconfig, context, api_url))
    batch, api = _batch(kubeconfig, context, api_url)
    deadline = time.monotonic() + float(timeout_s)
    killed: list[str] = []
    while len(killed) < int(kills):
        pod = _running_pod(core, job, namespace)
        if pod is None or pod in killed:
            if outcome(_plain(api, batch.read_namespaced_job(job, namespace))):
                raise RuntimeError(
                    f"Job {job} finished after {len(killed)} of {kills} kills: a run is "
                    f"shorter than running_s={running_s}; land more events or lower it"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"no new running pod of Job {job} within {timeout_s}s")
            time.sleep(0.2)
            continue
        time.sleep(float(running_s))
        if _running_pod(core, job, namespace) != pod:
            continue  # it ended on its own meanwhile: not a kill
        core.delete_namespaced_pod(pod, namespace, grace_period_seconds=0)
        killed.append(pod)
    return killed


def cut_landing(
    hosts: str | list[str],
    job: str,
    namespace: str = "isthmus-private",
    release: str = "isthmus",
    duration: str = "60s",
    name: str = "sync-partition",
    timeout_s: float | str = 300.0,
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> int:
    """sync-partition on Kubernetes: once Job `job` has a running pod, the sync's pods are
    cut off from the landing log's addresses (`hosts`: the object store's or file server's,
    a list or comma-separated). Chaos Mesh picks its pods when the fault is created and can
    only inject into running ones, so this waits for one first, then for Chaos Mesh to
    report the fault injected; a fault that reached no pod is an error, not a pass. Returns
    the pods injected."""
    from kubernetes import client

    core = client.CoreV1Api(api_client(kubeconfig, context, api_url))
    deadline = time.monotonic() + float(timeout_s)
    while _running_pod(core, job, namespace) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Job {job} has no running pod to cut off after {timeout_s}s")
        time.sleep(0.2)
    spec = faults.landing_cut(namespace, release, parse_hosts(hosts), duration)
    create_chaos("NetworkChaos", name, spec, namespace, kubeconfig, context, api_url)
    custom: Any = client.CustomObjectsApi(api_client(kubeconfig, context, api_url))
    while True:
        chaos: dict[str, Any] = custom.get_namespaced_custom_object(
            CHAOS_GROUP, CHAOS_VERSION, namespace, "networkchaos", name
        )
        count = injected(chaos)
        if count:
            return count
        if time.monotonic() > deadline:
            raise RuntimeError(f"NetworkChaos {name} injected into no pod within {timeout_s}s")
        time.sleep(0.5)


def wait_for_job(
    job: str,
    namespace: str = "isthmus-private",
    timeout_s: float | str = 1800.0,
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> str:
    """Wait until the Job finishes; returns "Complete" or "Failed" (raises on timeout)."""
    batch, api = _batch(kubeconfig, context, api_url)
    deadline = time.monotonic() + float(timeout_s)
    while True:
        done = outcome(_plain(api, batch.read_namespaced_job(job, namespace)))
        if done:
            return done
        if time.monotonic() > deadline:
            raise RuntimeError(f"Job {job} still running after {timeout_s}s")
        time.sleep(1.0)


def last_sync_succeeded(
    cronjob: str = "isthmus-sync",
    namespace: str = "isthmus-private",
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> bool:
    """Probe: the sync run created last among the finished ones (scheduled, or a drill's;
    audits aside) succeeded -- before a drill, the platform syncs; after it, the drill's own
    run did (True when none has finished yet)."""
    batch, api = _batch(kubeconfig, context, api_url)
    last = last_finished_run(
        [_plain(api, j) for j in batch.list_namespaced_job(namespace).items], cronjob
    )
    return last is None or outcome(last) == "Complete"


def warehouse_exactly_once(
    cronjob: str = "isthmus-sync",
    namespace: str = "isthmus-private",
    job: str = "",
    timeout_s: float | str = 600.0,
    kubeconfig: str = "",
    context: str = "",
    api_url: str = "",
) -> bool:
    """Probe: `isthmus sync audit` run as a Job of the sync's template (the same mounts)
    exits 0 -- no event twice in the warehouse, no batch waiting for unread files."""
    batch, api = _batch(kubeconfig, context, api_url)
    template = _plain(api, batch.read_namespaced_cron_job(cronjob, namespace))
    sync_args = template["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    name = job or f"{cronjob}-audit"
    # No retries: an audit that finds copies finds them again.
    body = job_from_cronjob(
        template, name, audit_args(list(sync_args["args"])), backoff_limit=0,
        labels={AUDIT: "true"},
    )  # fmt: skip
    _replace_job(batch, api, name, namespace, body)
    return wait_for_job(name, namespace, timeout_s, kubeconfig, context, api_url) == "Complete"
