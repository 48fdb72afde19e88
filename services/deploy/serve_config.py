"""The public zone's Ray Serve config file -- KubeRay's `RayService.spec.serveConfigV2` --
written from the same `AdsConfig` the local zone process deploys with (pure).

Locally `services/public/ads/zone.py` calls `serve.run(build_app(config))`; on Kubernetes
KubeRay hands this file to Serve's REST API. Both take the ranking deployment's options from
`AdsConfig.deployment_options()`, so the autoscaling bounds and delays, replica CPUs and
health checks cannot drift apart; `serve_config_drift` says where a rendered file differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.public.ads.config import APP_BUILDER, DEPLOYMENT, SERVICER, AdsConfig

GRPC_PORT = 9000  # Serve's gRPC proxy, where the gateway's cross-cluster hop lands
HTTP_PORT = 8000  # Serve's HTTP proxy (health and KubeRay's status checks)


# Where the Ray image (deploy/images/ray.Containerfile) keeps the model registry, and where a
# feature snapshot would be mounted (until one is, replicas score on default features).
IMAGE_ROOT = "/srv/isthmus"


def in_image(ads: AdsConfig) -> AdsConfig:
    """`ads` with its data paths where the Ray image has them."""
    return ads.model_copy(
        update={
            "registry_dir": Path(IMAGE_ROOT) / "models",
            "features_dir": Path(IMAGE_ROOT) / "features",
            "base_dir": Path(IMAGE_ROOT),
        }
    )


def serve_config(ads: AdsConfig) -> dict[str, Any]:
    """Serve's deploy schema (ray.serve.schema.ServeDeploySchema) for the ranking app. Where
    Serve's HTTP proxy binds is not decided here: the chart sets `http_options.host` from its
    `podListenHost` value (a pod's own network namespace)."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {"port": HTTP_PORT},
        "grpc_options": {"port": GRPC_PORT, "grpc_servicer_functions": [SERVICER]},
        "applications": [
            {
                "name": ads.app_name,
                "route_prefix": f"/{ads.app_name}",
                "import_path": APP_BUILDER,
                # Only what differs from AdsConfig's defaults: a default path (the shipped
                # rules file) is resolved inside the image, not on the machine rendering.
                "args": ads.model_dump(mode="json", exclude_defaults=True),
                "deployments": [{"name": DEPLOYMENT, **ads.deployment_options()}],
            }
        ],
    }


def serve_config_drift(rendered: dict[str, Any], ads: AdsConfig) -> list[str]:
    """Where a rendered serveConfigV2 differs from what `ads` says (empty = none): the
    ranking deployment's options and the app's args, field by field."""
    expected = serve_config(ads)["applications"][0]
    apps = [a for a in rendered.get("applications", []) if a.get("name") == ads.app_name]
    if len(apps) != 1:
        return [f"serveConfigV2 has {len(apps)} applications named {ads.app_name!r}, not 1"]
    app = apps[0]
    out = []
    if app.get("import_path") != expected["import_path"]:
        out.append(f"import_path {app.get('import_path')!r} != {expected['import_path']!r}")
    if app.get("args") != expected["args"]:
        out.append("args differ from AdsConfig")
    deployments = {d.get("name"): d for d in app.get("deployments", [])}
    got = deployments.get(DEPLOYMENT, {})
    want = expected["deployments"][0]
    for key in sorted(set(want) | set(got)):
        if key == "name":
            continue
        if key == "autoscaling_config":
            out += _dict_drift("autoscaling_config", got.get(key) or {}, want[key])
        elif got.get(key) != want.get(key):
            out.append(
                f"{DEPLOYMENT}.{key}: {got.get(key)!r} rendered, {want.get(key)!r} in AdsConfig"
            )
    return out


def _dict_drift(label: str, got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    return [
        f"{DEPLOYMENT}.{label}.{key}: {got.get(key)!r} rendered, {want.get(key)!r} in AdsConfig"
        for key in sorted(set(got) | set(want))
        if got.get(key) != want.get(key)
    ]
