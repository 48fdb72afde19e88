"""`helm test`'s probe: every server of the release answers grpc.health.v1 SERVING.

    python -m services.deploy.steady_state --health gateway:8081 --health profile:8081

Prints one line per server and exits 1 when any is not SERVING (or does not answer within
the timeout), so `helm test` fails on deviation.
"""

from __future__ import annotations

import argparse

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(address: str, timeout_s: float) -> str:
    """The server's overall health status name, or why it could not be read."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.RpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--health", action="append", required=True, help="host:port")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="per server")
    args = parser.parse_args(argv)
    failed = 0
    for address in args.health:
        status = check(address, args.timeout_s)
        failed += status != "SERVING"
        print(f"{address:<40} {status}")
    print("steady state: " + ("deviated" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
