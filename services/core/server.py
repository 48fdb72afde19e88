"""Server bootstrap shared by every isthmus service.

    server, port = create_server(config, [Binding(SERVICE_NAME, add_fn)])
    await server.start(); ...; await server.stop()     # or: await serve(server)

Every server gets `grpc.health.v1`, reflection (optional), the one interceptor, message-size
limits, optional (m)TLS, and on SIGTERM/SIGINT a graceful stop: health flips to NOT_SERVING first
so balancers move away, then in-flight calls get `shutdown_grace_s` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from services.core.config import ServerConfig
from services.core.interceptor import ServerInterceptor
from services.core.net import TlsConfig
from services.core.telemetry import Telemetry

log = logging.getLogger(__name__)

OVERALL = ""  # the health service name that stands for the whole server


@dataclass(frozen=True, slots=True)
class Binding:
    """One proto service to serve: its full name and the generated `add_*_to_server` call.
    `reflect=False` for services whose descriptors are not in the default pool (generic
    handlers), so reflection never advertises a service it cannot describe."""

    service_name: str
    add_to_server: Callable[[grpc.aio.Server], None]
    reflect: bool = True


class Server:
    """A started-or-not gRPC server with its health servicer and telemetry."""

    def __init__(
        self,
        grpc_server: grpc.aio.Server,
        health: HealthServicer,
        service_names: Sequence[str],
        telemetry: Telemetry,
        config: ServerConfig,
        health_server: grpc.aio.Server | None = None,
    ) -> None:
        self.grpc = grpc_server
        self.health_grpc = health_server  # the plaintext health-only listener, if any
        self.health = health
        self.service_names = tuple(service_names)
        self.telemetry = telemetry
        self.config = config
        self._stopped = False

    async def start(self) -> None:
        await self.grpc.start()
        if self.health_grpc is not None:
            await self.health_grpc.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop accepting, tell health checkers, let in-flight calls finish, then close.
        Calling it again is a no-op."""
        if self._stopped:
            return
        self._stopped = True
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.grpc.stop(self.config.shutdown_grace_s if grace_s is None else grace_s)
        if self.health_grpc is not None:
            await self.health_grpc.stop(0)
        self.telemetry.shutdown()

    async def _set_health(self, status: int) -> None:
        for name in (OVERALL, *self.service_names):
            await self.health.set(name, status)


def create_server(
    config: ServerConfig,
    bindings: Sequence[Binding],
    telemetry: Telemetry | None = None,
) -> tuple[Server, int]:
    """Build the server and bind its port (not yet started). Returns it and the bound port."""
    telemetry = telemetry or Telemetry.create(config.telemetry)
    grpc_server = grpc.aio.server(
        interceptors=[ServerInterceptor(telemetry, config.caller)],
        options=[
            ("grpc.max_receive_message_length", config.max_receive_message_bytes),
            ("grpc.max_send_message_length", config.max_send_message_bytes),
            ("grpc.so_reuseport", int(config.reuse_port)),
        ],
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    for binding in bindings:
        binding.add_to_server(grpc_server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, grpc_server)
    names = [b.service_name for b in bindings]
    if config.reflection:
        reflection.enable_server_reflection(
            [
                *(b.service_name for b in bindings if b.reflect),
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            grpc_server,
        )
    address = config.listen.address
    if config.tls.enabled:
        port = grpc_server.add_secure_port(address, server_credentials(config.tls))
    else:
        port = grpc_server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}")
    health_server = None
    if config.health_listen is not None:
        # Only the health service, with the same servicer (so the same statuses), no TLS.
        health_server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health, health_server)
        if health_server.add_insecure_port(config.health_listen.address) == 0:
            raise OSError(f"could not bind the health listener {config.health_listen.address}")
    return Server(grpc_server, health, names, telemetry, config, health_server), port


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """Listener credentials; with `require_client_cert` the peer must present a cert signed by
    `ca_file` (mTLS)."""
    if tls.cert_file is None or tls.key_file is None:
        raise ValueError("tls.enabled needs cert_file and key_file on a listener")
    root = _read(tls.ca_file) if tls.ca_file else None
    return grpc.ssl_server_credentials(
        [(_read(tls.key_file), _read(tls.cert_file))],
        root_certificates=root,
        require_client_auth=tls.require_client_cert,
    )


def channel_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    """Client credentials for dialing a TLS listener (with a client cert for mTLS if given)."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file) if tls.ca_file else None,
        private_key=_read(tls.key_file) if tls.key_file else None,
        certificate_chain=_read(tls.cert_file) if tls.cert_file else None,
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise OSError(f"cannot read TLS file {path}: {exc.strerror}") from exc


def run_announced(build: Callable[[], tuple[Server, int, Callable[[], None]]]) -> int:
    """Build a server, print the one line launchers and tests read ("listening on H:P"),
    serve until SIGTERM/SIGINT, then run the server's cleanup. Returns the exit code."""

    async def main() -> None:
        server, port, cleanup = build()
        try:
            print(f"listening on {server.config.listen.host}:{port}", flush=True)
            await serve(server)
        finally:
            cleanup()

    asyncio.run(main())
    return 0


async def serve(server: Server) -> None:
    """Start `server` and run until SIGTERM or SIGINT, then stop gracefully."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await server.start()
    log.info("serving %s", ", ".join(server.service_names))
    await stopping.wait()
    log.info("signal received; draining for up to %.1f s", server.config.shutdown_grace_s)
    await server.stop()


def free_port(preferred: int = 0, host: str = "127.0.0.1") -> int:
    """`preferred` if nothing listens on it, else a port the OS picks (for servers that need a
    number up front, e.g. Serve's proxies or a metrics endpoint named in a config file)."""
    with socket.socket() as probe:
        try:
            probe.bind((host, preferred))
        except OSError:
            probe.bind((host, 0))
        return int(probe.getsockname()[1])
