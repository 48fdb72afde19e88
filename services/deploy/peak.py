"""Peak season on Kubernetes: raise or restore the ranking deployment's replica floor.

The chart's peak-season CronJobs run `python -m services.deploy.peak --rayservice NAME
--min-replicas N` at each window's start (N = the window's floor) and end (N = the floor the
release was installed with). KubeRay applies the changed `serveConfigV2` to Serve in place;
Serve's autoscaler then keeps at least N replicas and the Ray autoscaler adds worker pods
for them. `with_floor` is the decision (pure); `main` the I/O (the Kubernetes API).
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from services.public.ads.config import DEPLOYMENT

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayservices"


def with_floor(serve_config_text: str, floor: int) -> str:
    """serveConfigV2 with the ranking deployment's min_replicas set to `floor` (and
    max_replicas raised to it when lower, so the config stays valid)."""
    doc: dict[str, Any] = yaml.safe_load(serve_config_text)
    found = False
    for app in doc.get("applications", []):
        for deployment in app.get("deployments", []):
            if deployment.get("name") != DEPLOYMENT:
                continue
            scaling = deployment.setdefault("autoscaling_config", {})
            scaling["min_replicas"] = floor
            scaling["max_replicas"] = max(floor, int(scaling.get("max_replicas", floor)))
            initial = scaling.get("initial_replicas")
            if initial is not None and initial < floor:
                scaling["initial_replicas"] = floor
            found = True
    if not found:
        raise ValueError(f"serveConfigV2 has no deployment named {DEPLOYMENT}")
    return yaml.safe_dump(doc, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Set the ranking replica floor of a RayService.")
    parser.add_argument("--rayservice", required=True, help="RayService name")
    parser.add_argument("--namespace", required=True, help="its namespace")
    parser.add_argument("--min-replicas", type=int, required=True, help="the floor to set")
    args = parser.parse_args(argv)
    from kubernetes import client, config

    config.load_incluster_config()  # type: ignore[no-untyped-call]
    api = client.CustomObjectsApi()
    current: Any = api.get_namespaced_custom_object(
        GROUP, VERSION, args.namespace, PLURAL, args.rayservice
    )
    text = with_floor(current["spec"]["serveConfigV2"], args.min_replicas)
    api.patch_namespaced_custom_object(
        GROUP, VERSION, args.namespace, PLURAL, args.rayservice, {"spec": {"serveConfigV2": text}}
    )
    print(f"{args.rayservice}: ranking floor set to {args.min_replicas} replicas")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
