"""`ServerConfig.health_listen`: a plaintext port that serves grpc.health.v1 and nothing else,
with the main listener's statuses (Kubernetes' native gRPC probe cannot speak TLS)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.core.config import ServerConfig
from services.core.server import create_server, free_port
from services.topology import Endpoint

pytestmark = pytest.mark.integration


def check(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


def test_health_port_mirrors_the_server_and_serves_nothing_else(loop_thread: Any) -> None:
    health_port = free_port()
    config = ServerConfig(health_listen=Endpoint(host="127.0.0.1", port=health_port))
    server, port = loop_thread.run(_create(config))
    loop_thread.run(server.start())
    health = f"127.0.0.1:{health_port}"
    try:
        assert check(health) == health_pb2.HealthCheckResponse.SERVING
        assert check(f"127.0.0.1:{port}") == health_pb2.HealthCheckResponse.SERVING
        with grpc.insecure_channel(health) as channel:  # reflection lives on the main port only
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            with pytest.raises(grpc.RpcError) as err:
                list(stub.ServerReflectionInfo(iter([request]), timeout=5))
            assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED
        loop_thread.run(server._set_health(health_pb2.HealthCheckResponse.NOT_SERVING))
        assert check(health) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        loop_thread.run(server.stop(0))
    with pytest.raises(grpc.RpcError) as gone:
        check(health)
    assert gone.value.code() is grpc.StatusCode.UNAVAILABLE


async def _create(config: ServerConfig) -> Any:
    return create_server(config, [])
