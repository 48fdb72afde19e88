"""The sync beyond `local[2]`, each way run once for real:
- against a standalone Spark master and worker the test starts from the installed PySpark
  (`spark-class ...Master` / `...Worker`, on 127.0.0.1): the run's executors are the worker's,
  and the master's own JSON status lists the finished application;
- submitted as a Ray job (`JobSubmissionClient`, what `ray job submit` calls) to a Ray head
  the test starts (`ray start --head`, dashboard on 127.0.0.1), whose job supervisor runs
  `python -m ray_jobs.sync events`.
Both land the same events in the warehouse, read through the sink's log, exactly once. The CTR
training job (`python -m ray_jobs.ctr.train`) is submitted to the same head and publishes a
model to a registry."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ray_jobs.ctr import candidates, data
from ray_jobs.sync import sinklog
from services.models.registry import ModelRegistry
from tests.support.processes import free_port
from tests.system.spark_world import World, land_events, make_world

pytestmark = pytest.mark.system
ROOT = Path(__file__).resolve().parents[2]


def warehouse_ids(world: World) -> list[str]:
    return [
        value
        for path in sinklog.live_files(world.locs.events.path)
        for value in pq.ParquetFile(path).read(columns=["event_id"]).column(0).to_pylist()
    ]


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, proc: Any = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.5)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@contextmanager
def started(
    command: list[str], log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """A process in a session of its own; its whole process group is ended afterwards (only
    what this test started)."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue


def sync_report(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, stdout[-3000:]
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def test_the_sync_runs_on_a_standalone_spark_master_and_worker(tmp_path: Path) -> None:
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    spark_class = str(spark_home / "bin" / "spark-class")
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1"}
    port, ui = free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    status_url = f"http://127.0.0.1:{ui}/json/"
    master_cmd = [spark_class, "org.apache.spark.deploy.master.Master",
                  "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)]  # fmt: skip
    worker_cmd = [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                  "--webui-port", str(free_port()), "--cores", "2", "--memory", "2g",
                  master_url]  # fmt: skip
    world = make_world(tmp_path / "world", spark_master=master_url)
    landed = land_events(world, 400, seed=11, prefix="s")
    topology = world.write_topology()
    with (
        started(master_cmd, tmp_path / "master.log", env) as master,
        started(worker_cmd, tmp_path / "worker.log", env),
    ):
        wait_for("master up", lambda: get_json(status_url)["status"] == "ALIVE", 120, master)
        wait_for(
            "worker registered",
            lambda: [w for w in get_json(status_url)["workers"] if w["state"] == "ALIVE"],
            120,
        )
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "sync", "events", "--topology", str(topology)],
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        apps = get_json(status_url)["completedapps"] + get_json(status_url)["activeapps"]
    report = sync_report(done.stdout)
    assert [a["name"] for a in apps] == ["isthmus-sync-events"]  # it ran on this master
    ids = warehouse_ids(world)
    assert len(ids) == len(set(ids)) == len({e["event_id"] for e in landed})
    assert report["landing_lines"] == len(landed)


SUBMIT = """
import json, sys, time
from ray.job_submission import JobSubmissionClient
address, entrypoint, pythonpath = sys.argv[1:4]
deadline = time.monotonic() + 120
while True:  # the dashboard takes a while to come up
    try:
        client = JobSubmissionClient(address)
        break
    except Exception:
        if time.monotonic() > deadline:
            raise
        time.sleep(1)
job = client.submit_job(entrypoint=entrypoint, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
while (status := client.get_job_status(job)).is_terminal() is False:
    time.sleep(1)
print(json.dumps({"job": job, "status": str(status.value), "logs": client.get_job_logs(job)}))
"""


RAY_ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


@dataclass(frozen=True)
class RayHead:
    namespace: str
    dashboard: str  # http://127.0.0.1:PORT, inside the namespace
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """A Ray head (`ray start --head`, dashboard on 127.0.0.1) in a network namespace of the
    module's own, with only loopback: Ray's GCS and raylet listen on every interface (not
    configurable), so they run where every interface is loopback. One head for the module's
    jobs, as a cluster serves many."""
    import tempfile

    from services.local import netns

    if not netns.can_isolate():
        pytest.skip("a network namespace needs root and `ip` (Ray binds every interface)")
    name = f"ismrj{os.getpid()}"
    netns.run_ip(["ip", "netns", "add", name])
    logs = tmp_path_factory.mktemp("ray-head")
    # Ray's socket paths must fit in 107 bytes: a short directory, not pytest's.
    temp = Path(tempfile.mkdtemp(prefix="rj", dir="/tmp"))
    try:
        netns.run_ip(["ip", "-n", name, "link", "set", "lo", "up"])
        gcs, dashboard = free_port(), free_port()
        ray_cli = str(Path(sys.executable).with_name("ray"))
        head = ["ip", "netns", "exec", name, ray_cli, "start", "--head", "--block",
                "--node-ip-address=127.0.0.1", f"--port={gcs}", "--include-dashboard=true",
                "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
                "--dashboard-agent-listen-port=0", "--num-cpus=1",
                "--object-store-memory=100000000", f"--temp-dir={temp}",
                "--disable-usage-stats"]  # fmt: skip
        with started(head, logs / "ray-head.log", RAY_ENV) as proc:
            yield RayHead(name, f"http://127.0.0.1:{dashboard}", proc, logs / "ray-head.log")
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        netns.run_ip(["ip", "netns", "delete", name], check=False)


def submit(head: RayHead, entrypoint: str) -> dict[str, Any]:
    """Submit a job as `ray job submit` does and wait for it: job id, status and logs."""
    submitted = subprocess.run(
        ["ip", "netns", "exec", head.namespace, sys.executable, "-c", SUBMIT, head.dashboard,
         entrypoint, str(ROOT)],
        env=RAY_ENV, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert head.proc.poll() is None, head.log.read_text()[-3000:]
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    outcome: dict[str, Any] = json.loads(submitted.stdout.strip().splitlines()[-1])
    assert outcome["job"].startswith("raysubmit_")
    return outcome


def test_the_sync_runs_as_a_ray_job(tmp_path: Path, ray_head: RayHead) -> None:
    world = make_world(tmp_path / "world")
    landed = land_events(world, 400, seed=12, prefix="r")
    topology = world.write_topology()
    outcome = submit(ray_head, f"{sys.executable} -m ray_jobs.sync events --topology {topology}")
    assert outcome["status"] == "SUCCEEDED", outcome["logs"][-3000:]
    report = sync_report(outcome["logs"])
    ids = warehouse_ids(world)
    assert len(ids) == len(set(ids)) == len({e["event_id"] for e in landed})
    assert report["landing_lines"] == len(landed)


def test_the_ctr_training_runs_as_a_ray_job(tmp_path: Path, ray_head: RayHead) -> None:
    # The job fetches the wheel on first use, but the head's namespace has no route out:
    # fetch it here, as `isthmus train` on this host would, so the test never depends on
    # another test (or `isthmus up`) having trained first.
    cache = ROOT / "var" / "cache" / "obp"
    data.ensure_wheel(cache)
    registry = tmp_path / "models"
    entrypoint = f"{sys.executable} -m ray_jobs.ctr.train --registry {registry} --cache {cache}"
    outcome = submit(ray_head, entrypoint)
    assert outcome["status"] == "SUCCEEDED", outcome["logs"][-3000:]
    loaded = ModelRegistry(registry).load()  # published, checksum verified
    assert f'"version": "{loaded.version}"' in outcome["logs"]
    manifest = loaded.manifest
    assert set(manifest["comparison"]) == set(candidates.CANDIDATES)  # the pooled one too
    assert manifest["serving_sklearn_max_abs_diff"] <= 1e-6
    assert manifest["selection"]["published"] in manifest["comparison"]
    plot = registry / "ctr" / loaded.version / "reliability.png"
    assert plot.read_bytes().startswith(b"\x89PNG")
