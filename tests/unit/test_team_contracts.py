"""Other teams' descriptor sets: merged with the shipped contract and held to its rules
(services/contract/teams.py), with real sets compiled by protoc from variants of the example
team's proto (examples/loyalty)."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.options.v1 import options_pb2
from services.contract.codegen import compile_team_set
from services.contract.descriptors import MethodInfo
from services.contract.teams import ContractError, load_contract, shipped_contract
from services.gateway.config import ClusterConfig, GatewayConfig, RouteConfig, RouteMatch
from services.gateway.routing import RouteTable, RoutingError, build_route_table
from services.topology.model import Endpoint, ZoneKind

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "loyalty" / "protos"
PROTO = "acme/loyalty/v1/loyalty.proto"
WELL_KNOWN = Path(protoc.__file__).parent / "_proto"


def compile_variant(work: Path, replace: dict[str, str] | None = None, name: str = PROTO) -> Path:
    """The example team's proto with `replace` applied, compiled into `work`."""
    root = work / "protos"
    text = (EXAMPLE / PROTO).read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
    out = work / f"{Path(name).stem}.binpb"
    compile_team_set(root, out)
    return out


@functools.cache
def example_set() -> Path:
    work = Path(tempfile.mkdtemp(prefix="isthmus-team-"))
    return compile_variant(work)


def test_the_example_teams_methods_are_loaded_with_their_declared_semantics() -> None:
    base = shipped_contract()
    contract = load_contract([example_set()], base)
    team = {m.path: m for m in contract.team_methods(base)}
    assert set(team) == {
        "/acme.loyalty.v1.MemberService/GetBalance",
        "/acme.loyalty.v1.MemberService/Redeem",
        "/acme.loyalty.v1.OfferService/ListOffers",
        "/acme.loyalty.v1.OfferService/CountViews",
    }
    redeem = team["/acme.loyalty.v1.MemberService/Redeem"]
    assert not redeem.is_public  # undeclared: SENSITIVE
    assert not redeem.retry_safe
    offers = team["/acme.loyalty.v1.OfferService/ListOffers"]
    assert offers.is_public
    assert offers.retry_safe
    assert offers.server_streaming
    assert team["/acme.loyalty.v1.OfferService/CountViews"].client_streaming
    assert set(base.methods) <= set(contract.methods)  # isthmus' own stay


def test_a_pii_field_reachable_from_a_public_method_refuses_the_set(tmp_path: Path) -> None:
    bad = compile_variant(
        tmp_path,
        {"  string segment = 1;": "  string segment = 1 [(isthmus.options.v1.pii) = true];"},
    )
    with pytest.raises(ContractError) as caught:
        load_contract([bad])
    assert [v.rule for v in caught.value.violations] == ["no-pii-in-public"]
    assert "/acme.loyalty.v1.OfferService/ListOffers" in str(caught.value)
    assert "ListOffersRequest.segment" in str(caught.value)


def test_a_set_may_not_declare_isthmus_or_grpc_services(tmp_path: Path) -> None:
    for package in ("isthmus.loyalty.v1", "grpc.loyalty.v1"):
        bad = compile_variant(
            tmp_path / package, {"package acme.loyalty.v1;": f"package {package};"}
        )
        with pytest.raises(ContractError, match="reserved-package"):
            load_contract([bad])


def test_a_set_built_without_its_imports_is_refused(tmp_path: Path) -> None:
    """An import the shipped contract does not hold either (the options proto it does)."""
    root = tmp_path / "protos"
    (root / "acme/common/v1").mkdir(parents=True)
    (root / "acme/common/v1/points.proto").write_text(
        'syntax = "proto3";\npackage acme.common.v1;\nmessage Points { int64 value = 1; }\n'
    )
    text = (EXAMPLE / PROTO).read_text()
    points_import = 'import "acme/common/v1/points.proto";\nimport "isthmus/'
    text = text.replace('import "isthmus/', points_import)
    text = text.replace("  int64 points = 2;", "  acme.common.v1.Points points = 2;")
    (root / PROTO).parent.mkdir(parents=True)
    (root / PROTO).write_text(text)
    out = tmp_path / "no-imports.binpb"
    includes = [f"-I{root}", f"-I{ROOT / 'protos'}", f"-I{WELL_KNOWN}"]
    # Without --include_imports: the set holds loyalty.proto alone.
    assert protoc.main(["protoc", *includes, f"--descriptor_set_out={out}", PROTO]) == 0
    with pytest.raises(ContractError, match=r"does not resolve.*--include_imports"):
        load_contract([out])


def test_a_different_copy_of_the_options_proto_is_refused(tmp_path: Path) -> None:
    fds = descriptor_pb2.FileDescriptorSet.FromString(example_set().read_bytes())
    options = next(f for f in fds.file if f.name == "isthmus/options/v1/options.proto")
    options.enum_type[0].value.add(name="SENSITIVITY_SECRET", number=3)
    path = tmp_path / "forked.binpb"
    path.write_bytes(fds.SerializeToString())
    with pytest.raises(ContractError, match=r"options\.proto differs"):
        load_contract([path])


def test_two_sets_declaring_one_service_are_refused(tmp_path: Path) -> None:
    copy = compile_variant(tmp_path, name="acme/loyalty/v1/loyalty_copy.proto")
    with pytest.raises(ContractError, match=r"MemberService is already declared"):
        load_contract([example_set(), copy])


def test_a_file_that_is_not_a_descriptor_set_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.binpb"
    junk.write_bytes(b"\xff\xff not protobuf")
    with pytest.raises(ContractError, match=r"junk\.binpb: not a FileDescriptorSet"):
        load_contract([junk])
    with pytest.raises(ContractError, match=r"missing\.binpb"):
        load_contract([tmp_path / "missing.binpb"])


def test_the_same_set_twice_is_one_contract() -> None:
    """Shared files (options, well-known types) and a repeated set merge without conflict."""
    once = load_contract([example_set()])
    twice = load_contract([example_set(), example_set()])
    assert set(once.methods) == set(twice.methods)


def test_the_gateway_config_refuses_a_bad_set_naming_the_method(tmp_path: Path) -> None:
    bad = compile_variant(
        tmp_path,
        {
            "  string offer_id = 1;\n  string title": "  string offer_id = 1 "
            "[(isthmus.options.v1.pii) = true];\n  string title"
        },
    )
    config = config_for([bad], public_offers=True)
    with pytest.raises(ValueError, match=r"OfferService/ListOffers.*Offer\.offer_id"):
        GatewayConfig.model_validate(config)


def config_for(sets: list[Path], public_offers: bool = True, public_members: bool = False) -> dict:
    def cluster(name: str, public: bool, port: int) -> ClusterConfig:
        kind = ZoneKind.PUBLIC if public else ZoneKind.PRIVATE
        return ClusterConfig(
            name=name,
            zone="public-a" if public else "private",
            zone_kind=kind,
            endpoints=[Endpoint(host="127.0.0.1", port=port)],
        )

    return {
        "descriptor_sets": sets,
        "clusters": [
            cluster("members", public_members, 1001),
            cluster("offers", public_offers, 1002),
        ],
        "routes": [
            RouteConfig(
                name="members",
                match=RouteMatch(service="acme.loyalty.v1.MemberService"),
                clusters=["members"],
            ),
            RouteConfig(
                name="offers",
                match=RouteMatch(service="acme.loyalty.v1.OfferService"),
                clusters=["offers"],
            ),
        ],
    }


def test_routing_an_undeclared_team_method_to_a_public_cluster_is_refused() -> None:
    config = GatewayConfig.model_validate(config_for([example_set()], public_members=True))
    methods = load_contract(config.descriptor_sets).methods
    with pytest.raises(RoutingError) as caught:
        build_route_table(config, methods)
    assert "/acme.loyalty.v1.MemberService/Redeem" in str(caught.value)  # undeclared
    assert "/acme.loyalty.v1.MemberService/GetBalance" in str(caught.value)  # SENSITIVE


@functools.cache
def team_methods() -> list[MethodInfo]:
    base = shipped_contract()
    return load_contract([example_set()], base).team_methods(base)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([ZoneKind.PRIVATE, ZoneKind.PUBLIC]), min_size=1, max_size=4),
    st.data(),
)
def test_loaded_team_methods_never_reach_a_public_cluster_unless_public(
    kinds: list[ZoneKind], data: st.DataObject
) -> None:
    """The routing property of the shipped contract, over a loaded team's real methods:
    whatever routes say, a SENSITIVE or undeclared method only ever gets private clusters,
    and a config that would send one to a public cluster does not load."""
    methods = {m.path: m for m in team_methods()}
    clusters = [
        ClusterConfig(
            name=f"c{i}",
            zone=f"z{i}",
            zone_kind=kind,
            endpoints=[Endpoint(host="127.0.0.1", port=2000 + i)],
        )
        for i, kind in enumerate(kinds)
    ]
    names = [c.name for c in clusters]
    prefixes = ["/", "/acme.", "/acme.loyalty.v1.MemberService/", "/acme.loyalty.v1.OfferService/"]
    routes = [
        RouteConfig(
            name=f"r{r}",
            match=RouteMatch(prefix=data.draw(st.sampled_from(prefixes))),
            clusters=data.draw(st.lists(st.sampled_from(names), min_size=1, unique=True)),
        )
        for r in range(data.draw(st.integers(1, 3)))
    ]
    config = GatewayConfig(clusters=clusters, routes=routes)
    raw = RouteTable(tuple(routes), {c.name: c for c in clusters}, methods)
    for method in methods.values():
        route = raw.route_for(method.path)
        if route is None:
            continue
        for cluster in raw.eligible_clusters(route, method):
            assert method.sensitivity == options_pb2.SENSITIVITY_PUBLIC or (
                cluster.zone_kind is ZoneKind.PRIVATE
            ), (method.path, cluster.name)
    try:
        build_route_table(config, methods)
    except RoutingError:
        return
    for method in methods.values():
        route = raw.route_for(method.path)
        if route is not None and not method.is_public:
            assert all(
                c.zone_kind is ZoneKind.PRIVATE for c in raw.eligible_clusters(route, method)
            )
            assert all(raw.clusters[n].zone_kind is ZoneKind.PRIVATE for n in route.clusters)


def teardown_module() -> None:
    shutil.rmtree(example_set().parent, ignore_errors=True)
