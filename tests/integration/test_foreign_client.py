"""A non-grpcio client (buf curl, Go's connect-go) talks to a foundation server through
reflection: schema discovery, success, and status codes with rich details."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.integration.sample_services import orders_binding

BUF = str(Path(__file__).resolve().parents[2] / "tools" / "node_modules" / ".bin" / "buf")


def buf_curl(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            BUF,
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            *args[:-1],
            f"http://127.0.0.1:{port}/{args[-1]}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_buf_curl_discovers_and_calls(start_server) -> None:  # type: ignore[no-untyped-def]
    _, port = start_server([orders_binding()])
    listing = buf_curl(port, "--list-methods", "")
    assert listing.returncode == 0, listing.stderr
    assert "isthmus.orders.v1.OrderService/PlaceOrder" in listing.stdout.split()

    ok = buf_curl(
        port, "-d", '{"order_id": "slow-0.01"}', "isthmus.orders.v1.OrderService/GetOrder"
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"order": {"orderId": "slow-0.01"}}


def test_buf_curl_sees_status_and_bad_request_details(start_server) -> None:  # type: ignore[no-untyped-def]
    _, port = start_server([orders_binding()])
    bad = buf_curl(
        port, "-d", '{"idempotency_key": "k-12345678"}', "isthmus.orders.v1.OrderService/PlaceOrder"
    )
    assert bad.returncode != 0
    error = json.loads(bad.stderr)
    assert error["code"] == "invalid_argument"
    assert error["message"].startswith("line_items: at least one line item is required")
    assert [d["type"] for d in error["details"]] == ["google.rpc.BadRequest"]
