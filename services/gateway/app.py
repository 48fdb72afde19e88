"""Wiring of the gateway: config -> route table, clusters, health checks -> gRPC server."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf.descriptor_pb2 import FileDescriptorSet

from isthmus.gateway.v1 import gateway_admin_pb2_grpc
from services.contract.descriptors import MethodInfo, load_descriptor_set, method_table
from services.contract.teams import Contract
from services.core.server import Binding, Server, create_server, serve
from services.core.telemetry import Telemetry
from services.gateway.admin import ADMIN_SERVICE, AdminServicer
from services.gateway.config import GatewayConfig, from_topology
from services.gateway.proxy import Gateway
from services.gateway.upstream import DiscoveryWatcher, HealthChecker
from services.topology import load_topology


class ProxyHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Hands every method of the contract in force (isthmus' own and the loaded teams'),
    except the admin service, to the gateway; unknown ones get UNIMPLEMENTED. A reload that
    loads or drops a team's set changes what is served from the next call on."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._handlers: dict[MethodInfo, grpc.RpcMethodHandler] = {}  # made once per method

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method = self._gateway.methods.get(handler_call_details.method)
        if method is None or method.service == ADMIN_SERVICE:
            return None
        handler = self._handlers.get(method)
        if handler is None:
            handler = self._handlers[method] = _handler(self._gateway, method)
        return handler


def _handler(gateway: Gateway, method: MethodInfo) -> grpc.RpcMethodHandler:
    """Plain coroutines for all four shapes: unary responses are returned, streamed ones
    written with context.write (no async-generator layer per message)."""
    if not method.client_streaming:

        async def unary_request(request: bytes, context: grpc.aio.ServicerContext) -> Any:
            return await gateway.unary_request(method, request, context)

        if method.server_streaming:
            return grpc.unary_stream_rpc_method_handler(unary_request)
        return grpc.unary_unary_rpc_method_handler(unary_request)

    async def stream_request(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        return await gateway.stream_request(method, requests, context)

    if method.server_streaming:
        return grpc.stream_stream_rpc_method_handler(stream_request)
    return grpc.stream_unary_rpc_method_handler(stream_request)


@dataclass
class GatewayRuntime:
    server: Server
    port: int
    gateway: Gateway
    health: HealthChecker
    discovery: DiscoveryWatcher
    admin: AdminServicer

    async def start_background(self) -> None:
        """Read endpoints files and check every endpoint (know who is up before taking
        traffic), then keep doing both in the background."""
        await self.discovery.poll_all()
        await self.health.check_all()
        self.health.start()
        self.discovery.start()

    async def stop_background(self) -> None:
        await self.discovery.stop()
        await self.health.stop()

    async def start(self) -> None:
        await self.start_background()
        await self.server.start()

    async def stop(self, grace_s: float | None = None) -> None:
        await self.server.stop(grace_s)
        await self.stop_background()
        for cluster in self.gateway.snapshot.clusters.values():
            await cluster.close()


def build_gateway(
    config: GatewayConfig,
    load_config: Callable[[], GatewayConfig] | None = None,
    methods: dict[str, MethodInfo] | None = None,
    telemetry: Telemetry | None = None,
    descriptors: FileDescriptorSet | None = None,
) -> GatewayRuntime:
    """The gateway server (not started). `descriptors` (the contract the methods come from,
    used to inspect PUBLIC requests) and `methods` default to the shipped contract; the
    config's `descriptor_sets` add other teams' contracts to them."""
    descriptors = descriptors if descriptors is not None else load_descriptor_set()
    methods = methods if methods is not None else method_table(descriptors)
    telemetry = telemetry or Telemetry.create(config.server.telemetry)
    gateway = Gateway(config, Contract(descriptors, methods), telemetry)
    admin = AdminServicer(gateway, load_config or (lambda: config))
    handler = ProxyHandler(gateway)
    bindings = [
        Binding(
            ADMIN_SERVICE,
            lambda s: gateway_admin_pb2_grpc.add_GatewayAdminServiceServicer_to_server(admin, s),
        ),
        Binding(
            "isthmus.gateway.proxy", lambda s: s.add_generic_rpc_handlers((handler,)), reflect=False
        ),
    ]
    server, port = create_server(config.server, bindings, telemetry)
    clusters = lambda: list(gateway.snapshot.clusters.values())  # noqa: E731
    health = HealthChecker(clusters, config.health_check)
    discovery = DiscoveryWatcher(clusters, health, config.discovery)
    return GatewayRuntime(server, port, gateway, health, discovery, admin)


def load_gateway_config(topology_path: Path | None, gateway_path: Path | None) -> GatewayConfig:
    """The topology's gateway with the overrides file applied; a file that cannot be read or
    parsed is a ValueError naming it, as an invalid one is (ReloadConfig and SIGHUP refuse
    it and keep the config in force)."""
    try:
        overrides = yaml.safe_load(gateway_path.read_text()) if gateway_path else {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{gateway_path}: {exc}") from exc
    if not isinstance(overrides or {}, dict):
        raise ValueError(f"{gateway_path}: not a mapping of gateway settings")
    return from_topology(load_topology(topology_path), **(overrides or {}))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="gateway YAML (GatewayConfig overrides)")
    parser.add_argument("--listen", help="HOST:PORT; default: the topology's gateway listen")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Python logging level (the gateway never logs payloads or metadata values)",
    )


def run(topology_path: Path | None, args: argparse.Namespace) -> int:
    from services.topology import Endpoint

    def load() -> GatewayConfig:
        config = load_gateway_config(topology_path, args.config)
        if args.listen:
            server = config.server.model_copy(update={"listen": Endpoint.parse(args.listen)})
            config = config.model_copy(update={"server": server})
        return config

    async def main() -> None:
        runtime = build_gateway(load(), load)
        await runtime.start_background()
        # SIGHUP reloads the config file (the ReloadConfig RPC does the same over the wire,
        # but with several instances on one address it reaches only one of them).
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, runtime.admin.reload_on_signal)
        print(f"listening on {runtime.server.config.listen.host}:{runtime.port}", flush=True)
        try:
            await serve(runtime.server)
        finally:
            await runtime.stop_background()

    asyncio.run(main())
    return 0
