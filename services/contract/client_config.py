"""The gRPC service config that internal callers use when dialing the gateway.

`protos/client_service_config.json` is gRPC's standard service-config JSON (per-method timeouts,
`retryPolicy`, `retryThrottling` as the retry budget). Pass it as the channel option
`grpc.service_config`. Retrying is only safe for RPCs the protos declare NO_SIDE_EFFECTS or
IDEMPOTENT; `check_client_config` holds the file to that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.contract.descriptors import ContractViolation, MethodInfo, check_retry_targets

CLIENT_SERVICE_CONFIG = (
    Path(__file__).resolve().parents[2] / "protos" / "client_service_config.json"
)


def load_client_service_config(path: Path = CLIENT_SERVICE_CONFIG) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def retried_methods(config: dict[str, Any], table: dict[str, MethodInfo]) -> list[str]:
    """Wire paths of every RPC a `retryPolicy` applies to. A name without "method" covers the
    whole service, as in gRPC; names matching nothing in `table` are kept so they get flagged."""
    paths: set[str] = set()
    for method_config in config.get("methodConfig", []):
        if "retryPolicy" not in method_config:
            continue
        for name in method_config.get("name", []):
            service, method = name.get("service", ""), name.get("method", "")
            if method:
                paths.add(f"/{service}/{method}")
                continue
            covered = [m.path for m in table.values() if m.service == service]
            paths.update(covered or [f"/{service}/*"])
    return sorted(paths)


def check_client_config(
    config: dict[str, Any], table: dict[str, MethodInfo]
) -> list[ContractViolation]:
    return check_retry_targets(retried_methods(config, table), table)


def python_client_settings(
    config: dict[str, Any], table: dict[str, MethodInfo]
) -> tuple[dict[str, Any], dict[str, float]]:
    """The service config for a Python channel, and the per-call timeouts to use with it.

    grpcio 1.85.1 (Python, sync and aio) ends calls early when the service config carries a
    `timeout`: measured here against a server answering in 50 ms, "0.3s" and "1s" failed with
    DEADLINE_EXCEEDED at once and "2s" after ~0.67 s, while the same deadlines given per call
    behave. So Python callers keep the retry policy and throttling from the file but take the
    timeouts out and pass them as each call's `timeout`. Other languages use the file as is.
    Returns (config without timeouts, {wire path: timeout in seconds})."""
    stripped = json.loads(json.dumps(config))
    timeouts: dict[str, float] = {}
    for method_config in stripped.get("methodConfig", []):
        timeout = method_config.pop("timeout", None)
        if timeout is None:
            continue
        seconds = float(str(timeout).removesuffix("s"))
        for name in method_config.get("name", []):
            service, method = name.get("service", ""), name.get("method", "")
            paths = (
                [f"/{service}/{method}"]
                if method
                else [m.path for m in table.values() if m.service == service]
            )
            for path in paths:
                timeouts.setdefault(path, seconds)
    return stripped, timeouts


def python_channel_settings(retries: bool = True) -> tuple[list[tuple[str, Any]], dict[str, float]]:
    """Channel options carrying the shipped service config (retries on unless `retries` is
    False) and the per-call timeouts, keyed "Service/Method" (see python_client_settings)."""
    from services.contract.descriptors import load_descriptor_set, method_table

    config, timeouts = python_client_settings(
        load_client_service_config(), method_table(load_descriptor_set())
    )
    if not retries:
        for method_config in config.get("methodConfig", []):
            method_config.pop("retryPolicy", None)
    options = [("grpc.service_config", json.dumps(config)), ("grpc.enable_retries", int(retries))]
    return options, {path.rsplit(".", 1)[-1]: t for path, t in timeouts.items()}
