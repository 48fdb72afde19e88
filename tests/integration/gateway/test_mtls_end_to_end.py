"""mTLS all the way: a caller authenticated by its client certificate at the gateway, the
gateway's own certificate towards a real private-zone ProfileService, and the caller's name
arriving in the private zone's audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import select

from isthmus.profile.v1 import profile_pb2 as pb
from isthmus.profile.v1 import profile_pb2_grpc
from services.contract.descriptors import load_descriptor_set, method_table
from services.core.config import CallerPolicy, ServerConfig
from services.core.server import channel_credentials
from services.gateway.app import build_gateway
from services.gateway.config import (
    AuthConfig,
    CallerConfig,
    ClusterConfig,
    GatewayConfig,
    RouteConfig,
    RouteMatch,
)
from services.private.app import build_server
from services.private.config import PrivateZoneConfig, SecretRef
from services.private.db.tables import audit_log
from services.topology.model import Endpoint, TlsConfig, ZoneKind
from tests.integration.certs import ScratchCA


def test_caller_identity_travels_over_mtls_into_the_audit_log(
    loop_thread: Any, tmp_path: Path
) -> None:
    ca = ScratchCA(tmp_path)
    private_cert, private_key = ca.issue("profile.private", server=True)
    gateway_server_cert, gateway_server_key = ca.issue("gateway.edge", server=True)
    gateway_client_cert, gateway_client_key = ca.issue("isthmus-gateway")
    caller_cert, caller_key = ca.issue("checkout-svc")
    rogue_cert, rogue_key = ca.issue("rogue-svc")

    private = PrivateZoneConfig(
        database_url=f"sqlite:///{tmp_path / 'p.db'}",
        master_key=SecretRef(file=tmp_path / "m.key", create_if_missing=True),
        hmac_key=SecretRef(file=tmp_path / "h.key", create_if_missing=True),
        server=ServerConfig(
            tls=TlsConfig(
                enabled=True,
                ca_file=ca.ca_file,
                cert_file=private_cert,
                key_file=private_key,
                require_client_cert=True,
            ),
            caller=CallerPolicy(trusted_forwarders=frozenset({"isthmus-gateway"})),
        ),
    )
    gateway_config = GatewayConfig(
        server=ServerConfig(
            tls=TlsConfig(
                enabled=True,
                ca_file=ca.ca_file,
                cert_file=gateway_server_cert,
                key_file=gateway_server_key,
                require_client_cert=True,
            ),
        ),
        upstream_tls=TlsConfig(
            enabled=True,
            ca_file=ca.ca_file,
            cert_file=gateway_client_cert,
            key_file=gateway_client_key,
        ),
        clusters=[],
        routes=[],
        auth=AuthConfig(
            callers=[
                CallerConfig(
                    name="checkout",
                    certificate_names=["checkout-svc"],
                    allow=["/isthmus.profile.v1.ProfileService/*"],
                )
            ]
        ),
    )

    async def start() -> Any:
        server, port, runtime = build_server(private, ["profile"])
        await server.start()
        cluster = ClusterConfig(
            name="profile",
            zone="private",
            zone_kind=ZoneKind.PRIVATE,
            endpoints=[Endpoint(host="localhost", port=port)],
        )
        route = RouteConfig(
            name="profile",
            match=RouteMatch(service="isthmus.profile.v1.ProfileService"),
            clusters=["profile"],
        )
        config = gateway_config.model_copy(update={"clusters": [cluster], "routes": [route]})
        gateway = build_gateway(config, methods=method_table(load_descriptor_set()))
        await gateway.start()
        return server, runtime, gateway

    server, runtime, gateway = loop_thread.run(start())
    try:

        def creds(cert: Path, key: Path) -> grpc.ChannelCredentials:
            return channel_credentials(
                TlsConfig(enabled=True, ca_file=ca.ca_file, cert_file=cert, key_file=key)
            )

        target = f"localhost:{gateway.port}"
        with grpc.secure_channel(target, creds(caller_cert, caller_key)) as channel:
            stub = profile_pb2_grpc.ProfileServiceStub(channel)
            reply = stub.ResolveIdentity(
                pb.ResolveIdentityRequest(
                    identifiers=[pb.Identifier(email="a@example.org")], create_if_missing=True
                ),
                metadata=[("x-isthmus-caller", "admin")],  # a spoof the gateway must drop
                timeout=10,
            )
        assert reply.unified_id.startswith("u_")
        with grpc.secure_channel(target, creds(rogue_cert, rogue_key)) as channel:
            stub = profile_pb2_grpc.ProfileServiceStub(channel)
            try:
                stub.GetProfile(pb.GetProfileRequest(unified_id=reply.unified_id), timeout=10)
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
        assert code is grpc.StatusCode.UNAUTHENTICATED
        with runtime.db.engine.connect() as conn:
            callers = [row.caller for row in conn.execute(select(audit_log)).all()]
        assert callers == ["checkout"]
    finally:
        loop_thread.run(gateway.stop(0))
        loop_thread.run(server.stop(0))
        runtime.close()
