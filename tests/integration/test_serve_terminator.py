"""The public zone's mTLS terminator, for real: the nginx.conf the chart renders, run by the
real nginx binary in front of a real gRPC server standing in for Serve's gRPC proxy.

Only what ties the file to a pod is changed (tests/support/nginx.py): the Secret's and the
emptyDir's mount paths become local directories (certificates from a scratch CA), the listen
ports and the upstream become 127.0.0.1 addresses. nginx runs with the container's own
arguments, and (when the tests run as root) as the pod's user. Shown:
- TLS 1.3 or 1.2, HTTP/2 (ALPN h2);
- a client certificate from the zone's CA gets calls through: unary and streaming, metadata
  both ways (keys with `_` and `.` too), a non-OK status with its code, message and details
  unchanged, the caller's deadline passed on and a call past it cancelled upstream;
- no client certificate, or one from another CA: UNAUTHENTICATED, nothing reaches Serve;
- a body above the limit: RESOURCE_EXHAUSTED; one above the gateway's 4 MiB but below the
  limit passes; Serve down: UNAVAILABLE (what the gateway ejects on);
- the access log names the method and statuses, never a token;
- the real gateway, configured by the private release's rendered ConfigMap (upstream_tls,
  the ads cluster's serve_healthz check), health-checks and ranks through the terminator.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from isthmus.ads.v1 import ads_pb2, ads_pb2_grpc
from services.core.config import ServerConfig
from services.core.secret_ref import SecretRef
from services.core.server import Binding, Server, channel_credentials, create_server
from services.topology.model import TlsConfig
from tests.integration.certs import ScratchCA
from tests.integration.gateway.upstreams import ECHO, Ads, Echo
from tests.support import nginx
from tests.support.helm_chart import NAMESPACES, render, zone_base

pytest.importorskip("helm_python", reason="helm-python-sdk (scripts/setup installs it)")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        nginx.NGINX is None,
        reason="nginx is not installed (scripts/setup installs Debian's nginx package)",
    ),
]
PROBE = "isthmus.testing.v1.TerminatorProbe"
HEALTHZ = "ray.serve.RayServeAPIService"
MiB = 1024 * 1024


def _text(raw: bytes) -> str:
    return raw[2:].decode() if raw else ""


def _msg(text: str) -> bytes:  # EchoRequest: field 1, short strings only
    data = text.encode()
    return b"\x0a" + bytes([len(data)]) + data


@dataclass
class Serve:
    """The stand-in for Serve's gRPC proxy: the gateway tests' Echo and AdService, Serve's
    Healthz, and a probe that answers a request's size and records its metadata."""

    server: Server
    port: int
    echo: Echo
    ads: Ads
    metadata: list[dict[str, str]] = field(default_factory=list)


async def start_serve() -> Serve:
    echo, ads = Echo("serve"), Ads("serve")
    seen: list[dict[str, str]] = []

    async def size(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen.append({k: str(v) for k, v in context.invocation_metadata() or ()})
        return str(len(request)).encode()

    async def healthz(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b""

    handlers = (
        grpc.method_handlers_generic_handler(
            PROBE, {"Size": grpc.unary_unary_rpc_method_handler(size)}
        ),
        grpc.method_handlers_generic_handler(
            HEALTHZ, {"Healthz": grpc.unary_unary_rpc_method_handler(healthz)}
        ),
    )
    probe = Binding(PROBE, lambda s: s.add_generic_rpc_handlers(handlers), reflect=False)
    config = ServerConfig(max_receive_message_bytes=64 * MiB)  # only nginx's limit applies
    server, port = create_server(config, [echo.binding(), ads.binding(), probe])
    await server.start()
    return Serve(server, port, echo, ads, seen)


@dataclass
class Terminator:
    port: int
    ca: ScratchCA
    serve: Serve
    process: nginx.Nginx
    test_report: str
    workdir: Path
    user: tuple[int, int] | None

    def channel(self, cert: tuple[Path, Path] | None) -> Any:
        """A client that trusts the zone's CA, presenting `cert` (or none)."""
        tls = TlsConfig(
            enabled=True,
            ca_file=self.ca.ca_file,
            cert_file=cert[0] if cert else None,
            key_file=cert[1] if cert else None,
        )
        options = [("grpc.max_receive_message_length", 64 * MiB)]
        return grpc.secure_channel(
            f"127.0.0.1:{self.port}", channel_credentials(tls), options=options
        )


def rendered_terminator() -> tuple[str, dict[str, Any]]:
    """The public release's nginx.conf and the terminator's pod spec."""
    docs = render(zone_base("public"), NAMESPACES["public"])
    (config_map,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "isthmus-serve-terminator"
    ]
    (deployment,) = [
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "isthmus-serve-terminator"
    ]
    return config_map["data"]["nginx.conf"], deployment["spec"]["template"]["spec"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pod_user(pod: dict[str, Any]) -> tuple[int, int, int] | None:
    """(runAsUser, runAsGroup, fsGroup) of the pod, when nginx can run as that user here (the
    tests run as root and setpriv exists); None: nginx runs as whoever runs the tests."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    context = pod["securityContext"]
    return context["runAsUser"], context["runAsGroup"], context["fsGroup"]


def lay_out_volumes(
    pod: dict[str, Any], workdir: Path, user: tuple[int, int, int] | None
) -> tuple[dict[str, str], dict[str, Path], ScratchCA]:
    """A local directory per volume of the terminator's container: the Secret's three files
    (a scratch CA, a server certificate), readable as the pod would have them; the emptyDir
    writable by the pod's user. Returns (volume -> mountPath, volume -> directory, the CA)."""
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    local = {volume: workdir / volume for volume in mounts}
    for directory in (*local.values(), workdir / "pki"):
        directory.mkdir()
    ca = ScratchCA(workdir / "pki")
    cert, key = ca.issue("ads.public-a.isthmus.internal", server=True)
    for source, name in ((cert, "tls.crt"), (key, "tls.key"), (ca.ca_file, "ca.crt")):
        shutil.copy(source, local["tls"] / name)
    if user is not None:
        (secret,) = [v["secret"] for v in pod["volumes"] if v["name"] == "tls"]
        for path in local["tls"].iterdir():
            os.chown(path, 0, user[2])  # fsGroup
            path.chmod(secret["defaultMode"])
        os.chown(local["tmp"], user[0], user[1])
    return mounts, local, ca


@pytest.fixture
def terminator(loop_thread: Any, tmp_path: Path) -> Iterator[Terminator]:
    conf, pod = rendered_terminator()
    (container,) = pod["containers"]
    user = pod_user(pod)
    # As the pod's user, nginx needs a directory it may enter (pytest's is root's only).
    workdir = Path(tempfile.mkdtemp(prefix="isthmus-terminator-")) if user else tmp_path
    workdir.chmod(0o755)
    serve = loop_thread.run(start_serve())
    try:
        mounts, local, ca = lay_out_volumes(pod, workdir, user)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        local_ports = {ports["grpc-tls"]: free_port(), ports["health"]: free_port()}
        text, counts = nginx.remap(conf, mounts, local, local_ports, f"127.0.0.1:{serve.port}")
        # tls.crt, tls.key, ca.crt; the pid file and five scratch paths; two listeners; Serve.
        assert counts == {"config": 0, "tls": 3, "tmp": 6, "listen": 2, "upstream": 1}, counts
        conf_file = local["config"] / "nginx.conf"
        conf_file.write_text(text)
        rendered_path = f"{mounts['config']}/nginx.conf"
        args = [str(conf_file) if a == rendered_path else a for a in container["args"]]
        assert container["command"] == ["nginx"]
        assert str(conf_file) in args
        run_as = (user[0], user[1]) if user else None
        report = nginx.check(conf_file, workdir, run_as)
        health = f"http://127.0.0.1:{local_ports[ports['health']]}/healthz"
        with nginx.Nginx(args, workdir, health, run_as) as process:
            port = local_ports[ports["grpc-tls"]]
            yield Terminator(port, ca, serve, process, report, workdir, run_as)
    finally:
        loop_thread.run(serve.server.stop(0))
        if workdir != tmp_path:
            shutil.rmtree(workdir)


def unary(channel: grpc.Channel, method: str, request: bytes, **kwargs: Any) -> Any:
    return channel.unary_unary(method).with_call(request, **kwargs)


def refusal(
    channel: grpc.Channel, method: str, request: bytes, timeout_s: float = 10
) -> grpc.RpcError:
    """The error a call that must fail ends with."""
    with pytest.raises(grpc.RpcError) as caught:
        unary(channel, method, request, timeout=timeout_s)
    return caught.value


def wait_for(condition: Any, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_the_rendered_file_is_what_nginx_accepts(terminator: Terminator) -> None:
    assert "syntax is ok" in terminator.test_report
    assert "test is successful" in terminator.test_report
    if terminator.user is not None:  # master and workers run as the pod's user
        assert terminator.process.proc is not None
        pids = [terminator.process.proc.pid, *nginx.children(terminator.process.proc.pid)]
        assert len(pids) == 3  # worker_processes 2
        assert {nginx.uid(pid) for pid in pids} == {terminator.user[0]}
    print(f"\n{nginx.version()} as uid:gid {terminator.user or 'of the tests'}")
    print(terminator.test_report.strip())


def test_tls_1_3_or_1_2_and_http2_only(terminator: Terminator) -> None:
    cert, key = terminator.ca.issue("isthmus-gateway")
    negotiated = []
    for highest in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        context = ssl.create_default_context(cafile=str(terminator.ca.ca_file))
        context.load_cert_chain(cert, key)
        context.maximum_version = highest
        context.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", terminator.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            negotiated.append((tls.version(), tls.selected_alpn_protocol()))
    assert negotiated == [("TLSv1.3", "h2"), ("TLSv1.2", "h2")]


def test_with_a_certificate_from_the_zones_ca_calls_pass_unchanged(
    terminator: Terminator,
) -> None:
    serve = terminator.serve
    with terminator.channel(terminator.ca.issue("isthmus-gateway")) as channel:
        reply, call = unary(
            channel, f"/{ECHO}/Unary", _msg("hello"), metadata=[("x-custom", "c1")], timeout=5
        )
        assert _text(reply) == "serve:hello"
        assert ("x-served-by", "serve") in call.initial_metadata()
        trailers = dict(call.trailing_metadata())
        assert trailers["x-trailer"] == "t-serve"
        assert trailers["x-seen-custom"] == "c1"
        # Metadata keys nginx would drop by default (underscores, dots) arrive.
        size, _ = unary(
            channel,
            f"/{PROBE}/Size",
            b"x" * 1000,
            metadata=[("x-under_score", "u"), ("x-dot.ted", "d")],
            timeout=5,
        )
        assert size == b"1000"
        assert serve.metadata[-1]["x-under_score"] == "u"
        assert serve.metadata[-1]["x-dot.ted"] == "d"
        # A non-OK status: code, message and rich details exactly as Serve sent them.
        error = refusal(channel, f"/{ECHO}/Unary", _msg("fail:NOT_FOUND"))
        assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "failed on serve")
        error = refusal(channel, f"/{ECHO}/Unary", _msg("rich"))
        assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert error.details() == "rich failure"
        raw = dict(error.trailing_metadata())["grpc-status-details-bin"]
        detail = error_details_pb2.ErrorInfo()
        status_pb2.Status.FromString(raw).details[0].Unpack(detail)
        assert (detail.reason, detail.domain) == ("QUOTA", "test")


def test_the_callers_deadline_travels_on_and_ends_the_call_upstream(
    terminator: Terminator,
) -> None:
    with terminator.channel(terminator.ca.issue("isthmus-gateway")) as channel:
        reply, _ = unary(channel, f"/{ECHO}/Unary", _msg("deadline"), timeout=2.0)
        remaining = float(_text(reply))  # gRPC rounds the encoded grpc-timeout up a little
        assert 0 < remaining < 2.05  # a deadline arrived, never longer than the caller's
        started = time.monotonic()
        error = refusal(channel, f"/{ECHO}/Unary", _msg("sleep:5"), timeout_s=0.5)
        elapsed = time.monotonic() - started
    # The caller's deadline ended it (speed is the bench's business, not an assertion here).
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: terminator.serve.echo.cancelled == 1)  # nginx ended the upstream stream
    print(
        f"\ndeadline 2.0 s -> upstream saw {remaining:.3f} s left; a 0.5 s deadline on a 5 s "
        f"call ended after {elapsed:.3f} s, upstream cancelled {terminator.serve.echo.cancelled}"
    )


def test_streams_and_ranking_pass(terminator: Terminator) -> None:
    with terminator.channel(terminator.ca.issue("isthmus-gateway")) as channel:
        split = channel.unary_stream(f"/{ECHO}/Split")(_msg("a,b,c"), timeout=5)
        assert [_text(m) for m in split] == ["a", "b", "c"]
        joined = channel.stream_unary(f"/{ECHO}/Join")(iter([_msg("p"), _msg("q")]), timeout=5)
        assert _text(joined) == "p+q"
        chat = channel.stream_stream(f"/{ECHO}/Chat")(iter([_msg("x"), _msg("y")]), timeout=5)
        assert [_text(m) for m in chat] == ["X", "Y"]
        candidates = [ads_pb2.Candidate(ad_id=f"ad-{i}", cpc_bid_micros=i) for i in range(3)]
        ranked = ads_pb2_grpc.AdServiceStub(channel).Rank(
            ads_pb2.RankRequest(request_id="r1", candidates=candidates), timeout=5
        )
    assert [a.ad_id for a in ranked.ads] == ["ad-2", "ad-1", "ad-0"]


def test_no_certificate_or_one_from_another_ca_is_refused(terminator: Terminator) -> None:
    (terminator.workdir / "other-ca").mkdir()
    other = ScratchCA(terminator.workdir / "other-ca")
    stranger = other.issue("isthmus-gateway")  # the right name, the wrong CA
    outcomes = {}
    for label, cert in (("no certificate", None), ("another CA", stranger)):
        with terminator.channel(cert) as channel:
            error = refusal(channel, f"/{ECHO}/Unary", _msg("hello"))
            outcomes[label] = (error.code(), error.details())
    expected = (grpc.StatusCode.UNAUTHENTICATED, "client certificate missing or not trusted")
    assert outcomes == {"no certificate": expected, "another CA": expected}
    assert terminator.serve.echo.calls["Unary"] == 0  # nothing reached Serve
    print(f"\nrefused: {outcomes}")


def test_request_size_limit_and_serve_down(terminator: Terminator, loop_thread: Any) -> None:
    client = terminator.ca.issue("isthmus-gateway")
    with terminator.channel(client) as channel:
        size, _ = unary(channel, f"/{PROBE}/Size", b"x" * (6 * MiB), timeout=10)
        assert size == str(6 * MiB).encode()  # above the gateway's 4 MiB, below the limit
        error = refusal(channel, f"/{PROBE}/Size", b"x" * (9 * MiB))
        assert (error.code(), error.details()) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "request larger than 8 MiB",
        )
        loop_thread.run(terminator.serve.server.stop(0))
        error = refusal(channel, f"/{ECHO}/Unary", _msg("hello"))
        assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_the_access_log_names_calls_and_never_a_token(terminator: Terminator) -> None:
    client = terminator.ca.issue("isthmus-gateway")
    secret = "Bearer eyJ-not-for-logs"
    with terminator.channel(client) as channel:
        unary(channel, f"/{ECHO}/Unary", _msg("hi"), metadata=[("authorization", secret)])
        refusal(channel, f"/{ECHO}/Unary", _msg("fail:NOT_FOUND"))
    with terminator.channel(None) as channel:
        refusal(channel, f"/{ECHO}/Unary", _msg("hi"))
    wait_for(lambda: len(terminator.process.log_lines()) >= 3)
    lines = terminator.process.log_lines()
    assert f'"CN=isthmus-gateway" "POST /{ECHO}/Unary" http=200 grpc=0' in lines[0]
    assert "grpc=5" in lines[1]  # NOT_FOUND, from the trailers
    assert f'"-" "POST /{ECHO}/Unary" http=200 grpc=16' in lines[2]  # no certificate
    for text in (*lines, terminator.process.errors()):
        assert "eyJ-not-for-logs" not in text
    print("\n" + "\n".join(lines))


def test_the_gateway_configured_by_the_private_release_ranks_through_it(
    terminator: Terminator, loop_thread: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.gateway.app import build_gateway
    from services.gateway.auth import issue_token
    from services.gateway.config import AuthConfig, CallerConfig, from_topology
    from services.topology import parse_topology
    from services.topology.model import Endpoint

    docs = render(zone_base("private"), NAMESPACES["private"])
    (data,) = [
        d["data"]
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "isthmus-gateway"
    ]
    topology = parse_topology(data["topology.yaml"], "<chart>")
    rendered_tls = topology.gateway.upstream_tls
    assert rendered_tls.enabled
    assert rendered_tls.cert_file is not None
    # The gateway's upstream Secret, at local paths: a client certificate from the zone's CA.
    cert, key = terminator.ca.issue("isthmus-gateway")
    upstream_tls = rendered_tls.model_copy(
        update={"cert_file": cert, "key_file": key, "ca_file": terminator.ca.ca_file}
    )
    monkeypatch.setenv("ISTHMUS_TEST_TOKEN_KEY", "cd" * 32)
    auth = AuthConfig(
        token_key=SecretRef(env="ISTHMUS_TEST_TOKEN_KEY"),
        callers=[CallerConfig(name="storefront", allow=["/isthmus.ads.v1.AdService/*"])],
    )
    config = from_topology(topology, server=ServerConfig(), upstream_tls=upstream_tls, auth=auth)
    (ads,) = [c for c in config.clusters if c.name == "ads-a"]
    assert ads.health_check == "serve_healthz"
    assert ads.dial_tls(upstream_tls).enabled
    ads = ads.model_copy(update={"endpoints": [Endpoint(host="127.0.0.1", port=terminator.port)]})
    (route,) = [r for r in config.routes if r.match.service == "isthmus.ads.v1.AdService"]
    route = route.model_copy(update={"clusters": ["ads-a"], "per_try_timeout_s": 2.0})
    config = config.model_copy(update={"clusters": [ads], "routes": [route]})

    async def start() -> Any:
        runtime = build_gateway(config)
        await runtime.start()
        return runtime

    runtime = loop_thread.run(start())
    try:
        endpoints = runtime.gateway.snapshot.clusters["ads-a"].endpoints
        wait_for(lambda: all(e.healthy for e in endpoints))  # Healthz through nginx passed
        token = issue_token(bytes.fromhex("cd" * 32), "storefront", int(time.time()) + 300)
        with grpc.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            candidates = [ads_pb2.Candidate(ad_id=f"ad-{i}", cpc_bid_micros=i) for i in range(3)]
            ranked = ads_pb2_grpc.AdServiceStub(channel).Rank(
                ads_pb2.RankRequest(request_id="r1", candidates=candidates),
                metadata=[("authorization", f"Bearer {token}")],
                timeout=5,
            )
        assert ranked.model_version == "serve"
        assert [a.ad_id for a in ranked.ads] == ["ad-2", "ad-1", "ad-0"]
        assert terminator.serve.ads.calls == 1
        wait_for(lambda: any("AdService/Rank" in line for line in terminator.process.log_lines()))
        lines = terminator.process.log_lines()
        rank = [line for line in lines if "AdService/Rank" in line]
        assert (
            '"CN=isthmus-gateway" "POST /isthmus.ads.v1.AdService/Rank" http=200 grpc=0' in rank[0]
        )
        assert any(f"/{HEALTHZ}/Healthz" in line for line in lines)
        print("\n" + "\n".join(lines[:2] + rank))
    finally:
        loop_thread.run(runtime.stop(0))
