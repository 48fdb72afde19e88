"""A FAKE Kubernetes API server, for testing the drills' Kubernetes target on a machine where
no real API server can run. It is not Kubernetes: it answers the few REST calls the actions
and probes make, with the real API's paths and object shapes (what `kubectl get -o json`
returns for Pod, PodList, Deployment, Scale, RayService, Chaos Mesh, CronJob and Job objects),
and plays two controllers: a deleted pod of a workload is replaced by a new pod that becomes
Ready after `respawn_s` (as a ReplicaSet or KubeRay would); a Job gets a pod that runs
`job_run_s` and ends as `job_result(job)` says, a deleted or failed pod counting against the
Job's backoffLimit as the real Job controller counts it. Everything else answers 404.

    with FakeKubeApi() as api:
        api.add_pods("ns", {"app.kubernetes.io/component": "ray-worker", ...}, count=3)
        ... kubernetes client with host=api.url ...
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlparse

_ids = itertools.count(1)


class FakeKubeApi:
    """The fake API's state and its HTTP server on 127.0.0.1 (a free port)."""

    def __init__(self, respawn_s: float = 1.0, job_run_s: float = 1.0) -> None:
        self.respawn_s = respawn_s
        self.job_run_s = job_run_s
        self.job_result: Callable[[dict[str, Any]], bool] = lambda _job: True
        self.jobs_created: list[dict[str, Any]] = []
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.custom: dict[
            tuple[str, str, str, str], dict[str, Any]
        ] = {}  # group/v, plural, ns, name
        self.deleted: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ---- state ---------------------------------------------------------------------------
    def add_pods(
        self, namespace: str, labels: dict[str, str], count: int, prefix: str = "pod"
    ) -> None:
        for _ in range(count):
            self._new_pod(namespace, labels, prefix, ready=True)

    def add_deployment(self, namespace: str, name: str, replicas: int) -> None:
        self.deployments[(namespace, name)] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(name, namespace, {}),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": name, "image": "isthmus/services:0.1.0"}]},
                },
            },
            "status": {"replicas": replicas, "availableReplicas": replicas},
        }

    def add_custom(self, api: str, plural: str, namespace: str, body: dict[str, Any]) -> None:
        self.custom[(api, plural, namespace, body["metadata"]["name"])] = body

    def add_cronjob(
        self, namespace: str, name: str, args: list[str], labels: dict[str, str]
    ) -> None:
        body = {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": _meta(name, namespace, labels),
            "spec": {
                "schedule": "*/15 * * * *",
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 2,
                        "template": {
                            "metadata": {"labels": dict(labels)},
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {"name": "sync", "image": "isthmus/services:0.1.0",
                                     "args": list(args)}
                                ],
                            },
                        },
                    }
                },
            },
        }  # fmt: skip
        self.custom[("batch/v1", "cronjobs", namespace, name)] = body

    def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.custom.get(("batch/v1", "jobs", namespace, name))

    # ---- the Job controller (call with the lock held) ------------------------------------
    def _inject(self, namespace: str, chaos: dict[str, Any]) -> None:
        """Chaos Mesh's controller, as far as the drills read it: the running pods the
        selector's labels match now get the fault (pods started later do not)."""
        selector = chaos["spec"].get("selector", {})
        wanted = selector.get("labelSelectors")
        namespaces = selector.get("namespaces") or [namespace]
        records = []
        if wanted:
            records = [
                {"id": f"{ns}/{name}", "phase": "Injected", "injectedCount": 1,
                 "recoveredCount": 0, "selectorKey": "."}
                for (ns, name), pod in self.pods.items()
                if ns in namespaces and _matches(pod, wanted) and _is_running(pod)
            ]  # fmt: skip
        chaos["status"] = {"experiment": {"containerRecords": records, "desiredPhase": "Run"}}

    def _start_job_pod(self, namespace: str, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        labels = {
            **job["spec"]["template"].get("metadata", {}).get("labels", {}),
            "batch.kubernetes.io/job-name": name,
            "job-name": name,
        }
        pod = self._new_pod(namespace, labels, name, ready=True)
        job["status"]["active"] = 1
        threading.Timer(self.job_run_s, self._pod_ran, (namespace, name, pod)).start()

    def _pod_ran(self, namespace: str, job_name: str, pod_name: str) -> None:
        with self.lock:
            pod = self.pods.get((namespace, pod_name))
            job = self.job(namespace, job_name)
            if pod is None or job is None or pod["status"]["phase"] != "Running":
                return  # deleted meanwhile: counted when it was
            ok = self.job_result(job)
            pod["status"] = {"phase": "Succeeded" if ok else "Failed", "conditions": []}
            if ok:
                job["status"].update(active=0, succeeded=1, conditions=[_condition("Complete")])
            else:
                self._job_pod_failed(namespace, job)

    def _job_pod_failed(self, namespace: str, job: dict[str, Any]) -> None:
        status = job["status"]
        status["failed"] = status.get("failed", 0) + 1
        status["active"] = 0
        if status["failed"] > int(job["spec"].get("backoffLimit", 6)):
            status["conditions"] = [_condition("Failed")]
        else:
            self._start_job_pod(namespace, job)

    def ready_count(self, namespace: str, labels: dict[str, str]) -> int:
        with self.lock:
            return sum(
                1
                for (ns, _), pod in self.pods.items()
                if ns == namespace and _matches(pod, labels) and _is_ready(pod)
            )

    def _new_pod(self, namespace: str, labels: dict[str, str], prefix: str, ready: bool) -> str:
        name = f"{prefix}-{next(_ids):05d}"
        phase = "Running" if ready else "Pending"
        self.pods[(namespace, name)] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": _meta(name, namespace, labels),
            "spec": {"containers": [{"name": "main", "image": "isthmus/ray:0.1.0"}]},
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            },
        }
        return name

    def _replace(self, namespace: str, pod: dict[str, Any]) -> None:
        labels = pod["metadata"]["labels"]
        prefix = pod["metadata"]["name"].rsplit("-", 1)[0]
        with self.lock:
            name = self._new_pod(namespace, labels, prefix, ready=False)

        def become_ready() -> None:
            with self.lock:
                fresh = self.pods.get((namespace, name))
                if fresh is not None:
                    fresh["status"] = {
                        "phase": "Running",
                        "conditions": [{"type": "Ready", "status": "True"}],
                    }

        threading.Timer(self.respawn_s, become_ready).start()

    # ---- server ----------------------------------------------------------------------------
    def __enter__(self) -> FakeKubeApi:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


def _meta(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": dict(labels),
        "uid": str(uuid.uuid4()),
        "resourceVersion": str(next(_ids)),
        "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _condition(kind: str) -> dict[str, str]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"type": kind, "status": "True", "lastTransitionTime": now}


def _matches(obj: dict[str, Any], wanted: dict[str, str]) -> bool:
    labels = obj["metadata"].get("labels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def _is_running(pod: dict[str, Any]) -> bool:
    return bool(pod["status"]["phase"] == "Running")


def _is_ready(pod: dict[str, Any]) -> bool:
    return pod["status"]["phase"] == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"]
    )


def _selector(query: str) -> dict[str, str]:
    raw = parse_qs(query).get("labelSelector", [""])[0]
    return dict(part.split("=", 1) for part in raw.split(",") if part)


PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+))?$")
DEPLOYMENT = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)(/scale)?$")
CUSTOM = re.compile(r"^/apis/([^/]+/[^/]+)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?$")


def _handler(api: FakeKubeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # quiet
            return

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self) -> None:
            self._send(404, _status(404, "NotFound", f"{self.path} not found"))

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if m := PODS.match(url.path):
                namespace, name = m.groups()
                with api.lock:
                    if name:
                        pod = api.pods.get((namespace, name))
                        return self._send(200, pod) if pod else self._not_found()
                    wanted = _selector(url.query)
                    items = [
                        p
                        for (ns, _), p in api.pods.items()
                        if ns == namespace and _matches(p, wanted)
                    ]
                listed = {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}
                return self._send(200, listed)
            if m := DEPLOYMENT.match(url.path):
                namespace, name, scale = m.groups()
                found = api.deployments.get((namespace, name))
                if found is None:
                    return self._not_found()
                return self._send(200, _scale(found) if scale else found)
            if m := CUSTOM.match(url.path):
                group_version, namespace, plural, name = m.groups()
                if name:
                    obj = api.custom.get((group_version, plural, namespace, name))
                    return self._send(200, obj) if obj else self._not_found()
                items = [
                    o
                    for (g, p, ns, _), o in api.custom.items()
                    if (g, p, ns) == (group_version, plural, namespace)
                ]
                return self._send(
                    200, {"apiVersion": group_version, "kind": "List", "items": items}
                )
            return self._not_found()

        def do_DELETE(self) -> None:
            url = urlparse(self.path)
            self._body()
            if m := PODS.match(url.path):
                namespace, name = m.groups()
                with api.lock:
                    pod = api.pods.pop((namespace, name), None)
                if pod is None:
                    return self._not_found()
                api.deleted.append(name)
                job_name = pod["metadata"]["labels"].get("job-name")
                if job_name is None:
                    api._replace(namespace, pod)
                with api.lock:
                    job = api.job(namespace, job_name) if job_name else None
                    if job is not None and pod["status"]["phase"] == "Running":
                        api._job_pod_failed(namespace, job)
                return self._send(200, pod)
            if m := CUSTOM.match(url.path):
                group_version, namespace, plural, name = m.groups()
                obj = api.custom.pop((group_version, plural, namespace, name or ""), None)
                if obj is None:
                    return self._not_found()
                return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
            return self._not_found()

        def do_POST(self) -> None:
            url = urlparse(self.path)
            body = self._body()
            if (m := CUSTOM.match(url.path)) and m.group(4) is None:
                group_version, namespace, plural, _ = m.groups()
                key = (group_version, plural, namespace, body["metadata"]["name"])
                if key in api.custom:
                    return self._send(409, _status(409, "AlreadyExists", "already exists"))
                body["metadata"].update(
                    _meta(body["metadata"]["name"], namespace, body["metadata"].get("labels", {}))
                )
                with api.lock:
                    api.custom[key] = body
                    if plural == "networkchaos":
                        api._inject(namespace, body)
                    if (group_version, plural) == ("batch/v1", "jobs"):
                        body["status"] = {}
                        api.jobs_created.append(copy.deepcopy(body))
                        api._start_job_pod(namespace, body)
                return self._send(201, body)
            return self._not_found()

        def do_PATCH(self) -> None:
            url = urlparse(self.path)
            body = self._body()
            if (m := CUSTOM.match(url.path)) and m.group(3) == "cronjobs":
                group_version, namespace, plural, name = m.groups()
                with api.lock:
                    found = api.custom.get((group_version, plural, namespace, name or ""))
                    if found is None:
                        return self._not_found()
                    _merge(found, body)  # a JSON merge patch (RFC 7386)
                return self._send(200, found)
            if (m := DEPLOYMENT.match(url.path)) and m.group(3):
                namespace, name, _ = m.groups()
                found = api.deployments.get((namespace, name))
                if found is None:
                    return self._not_found()
                replicas = int(body["spec"]["replicas"])
                found["spec"]["replicas"] = replicas
                found["status"].update(replicas=replicas, availableReplicas=replicas)
                return self._send(200, _scale(found))
            return self._not_found()

    return Handler


def _scale(deployment: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {k: deployment["metadata"][k] for k in ("name", "namespace", "uid")},
        "spec": {"replicas": deployment["spec"]["replicas"]},
        "status": {"replicas": deployment["status"]["replicas"]},
    }


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "code": code,
        "message": message,
    }


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Apply a JSON merge patch in place: None deletes a key, objects merge, the rest replace."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
