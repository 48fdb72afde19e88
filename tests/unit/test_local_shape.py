"""The production shape as a plan (pure): Ray nodes per multi-node zone in start order, the
ads process joining its zone's head, gateway instances sharing one address with their own
metrics ports; the plan survives its trip to the supervisor; back-off and status rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.local.database import PostgresLayout
from services.local.netns import plan as net_plan
from services.local.plan import build, plan_from_json, plan_to_json
from services.local.status import render, rows
from services.local.supervisor import RunState, Started, restart_delay_s
from services.topology import TopologyError, load_topology, parse_topology

pytestmark = pytest.mark.unit
RUN = Path("/tmp/isthmus-test-run")


def production_plan(isolated: bool = False):  # type: ignore[no-untyped-def]
    topology = load_topology()
    net = net_plan([z.name for z in topology.zones]) if isolated else None
    return build(
        topology,
        RUN,
        net,
        metrics_ports=(9101, 9102),
        ray_ports={"public-a": 6390, "public-b": 6391},
        postgres=PostgresLayout(RUN / "pg", "127.0.0.1", 1, Path("/usr/bin"), RUN / "secrets"),
    )


def test_production_shape_starts_ray_nodes_before_the_ads_process_of_their_zone() -> None:
    names = [p.name for p in production_plan().processes]
    for zone, workers in (("public-a", 3), ("public-b", 1)):
        head = names.index(f"{zone}-ray-head")
        nodes = [names.index(f"{zone}-ray-worker-{i}") for i in range(1, workers + 1)]
        ads = names.index(f"ads-{zone[-1]}")
        assert head < min(nodes)
        assert max(nodes) < ads
    assert names[-2:] == ["gateway-1", "gateway-2"]


def test_ads_joins_its_zones_head_and_the_head_keeps_no_replica_cpus() -> None:
    plan = production_plan(isolated=True)
    by_name = {p.name: p for p in plan.processes}
    ads = by_name["ads-a"].argv
    assert ads[ads.index("--ray-address") + 1] == "10.77.2.2:6390"
    head = by_name["public-a-ray-head"].argv
    assert "--num-cpus=0" in head
    assert "--head" in head
    assert "--block" in head
    worker = by_name["public-a-ray-worker-1"].argv
    assert "--address=10.77.2.2:6390" in worker
    assert "--num-cpus=1" in worker
    env = dict(by_name["public-a-ray-worker-1"].env)
    assert env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert env["RAY_AUTH_MODE"] == "disabled"


def test_gateway_instances_share_the_address_with_their_own_metrics_ports() -> None:
    plan = production_plan()
    files = {
        p.name: Path(p.argv[p.argv.index("--config") + 1])
        for p in plan.processes
        if p.kind == "gateway"
    }
    docs = [yaml.safe_load(plan.files[path]) for path in files.values()]
    assert [d["server"]["reuse_port"] for d in docs] == [True, True]
    listens = {(d["server"]["listen"]["host"], d["server"]["listen"]["port"]) for d in docs}
    assert len(listens) == 1
    ports = [d["server"]["telemetry"]["prometheus_listen"]["port"] for d in docs]
    assert ports == [9101, 9102]


def test_minimal_shape_has_no_ray_nodes_and_one_exclusive_gateway() -> None:
    topology = load_topology(embedded="local-minimal.yaml")
    plan = build(topology, RUN, None, metrics_ports=(9101,))
    kinds = [p.kind for p in plan.processes]
    assert "ray-head" not in kinds
    assert kinds.count("gateway") == 1
    gateway = next(p for p in plan.processes if p.kind == "gateway")
    doc = yaml.safe_load(plan.files[Path(gateway.argv[gateway.argv.index("--config") + 1])])
    assert doc["server"]["reuse_port"] is False
    with pytest.raises(ValueError, match="metrics ports"):
        build(load_topology(), RUN, None, metrics_ports=(9101,))


def test_the_plan_survives_its_trip_to_the_supervisor() -> None:
    plan = production_plan(isolated=True)
    assert plan_from_json(plan_to_json(plan)) == plan


def test_restart_back_off_doubles_to_a_cap() -> None:
    assert [restart_delay_s(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_status_rows_show_restarts_and_health() -> None:
    state = RunState(
        "r" * 32,
        "/run",
        "10.77.0.2:50051",
        [
            Started("gateway-1", None, 10, "log", "a", "gateway", "running", 2, -9, 100.0),
            Started("public-a-ray-worker-2", "public-a", 11, "log", "", "ray-worker", "backoff", 1),
        ],
        [],
        False,
    )
    table = rows(state, {"gateway-1": "serving"}, now=160.0)
    assert [(r.restarts, r.health) for r in table] == [(2, "serving"), (1, "down")]
    assert table[0].uptime_s == 60.0
    assert table[1].uptime_s == 0.0
    text = render(state, table)
    assert "gateway-1" in text
    assert "backoff" in text
    assert "1m00s" in text


def test_chaos_allowance_must_name_known_zones() -> None:
    text = (Path(__file__).parents[2] / "services/topology/local.yaml").read_text()
    doc = yaml.safe_load(text)
    doc["chaos"]["zones"] = ["public-z"]
    with pytest.raises(TopologyError, match="public-z"):
        parse_topology(yaml.safe_dump(doc))
    doc["chaos"] = {"targets": ["meteor"]}
    with pytest.raises(TopologyError, match=r"chaos\.targets"):
        parse_topology(yaml.safe_dump(doc))


def test_a_private_zone_on_postgresql_runs_its_server_first_and_keeps_the_password_out() -> None:
    """The embedded topology runs the private zone on PostgreSQL: the server is the zone's
    first process (the services migrate it at start), stops with SIGINT (fast shutdown),
    listens on the zone's own address, and the services' URL names a passfile, never a
    password."""
    import signal

    topology = load_topology()
    private = topology.zone("private")
    assert private.database is not None
    assert private.database.engine == "postgresql"
    located = PostgresLayout(RUN / "pg", "127.0.0.1", 1, Path("/usr/bin"), RUN / "secrets")
    net = net_plan([z.name for z in topology.zones])
    plan = build(topology, RUN, net, metrics_ports=(9101, 9102), ray_ports={}, postgres=located)
    names = [p.name for p in plan.processes]
    assert names.index("private-postgres") < min(names.index("profile"), names.index("orders"))
    server = next(p for p in plan.processes if p.name == "private-postgres")
    assert server.kind == "database"
    assert server.stop_signal == signal.SIGINT
    zone_ip = net.zone_ip["private"]
    assert f"listen_addresses={zone_ip}" in server.argv
    assert plan.postgres is not None
    assert (plan.postgres.host, plan.postgres.port) == (zone_ip, private.database.port)
    url = yaml.safe_load(plan.files[RUN / "private.yaml"])["database_url"]
    assert url.startswith(f"postgresql+psycopg://isthmus@{zone_ip}:{private.database.port}/")
    assert f"passfile={RUN / 'secrets' / 'postgres.pgpass'}" in url
    assert plan_from_json(plan_to_json(plan)).postgres == plan.postgres

    with pytest.raises(ValueError, match="runs PostgreSQL"):
        build(topology, RUN, None, metrics_ports=(9101, 9102), ray_ports={})
    minimal = load_topology(Path("services/topology/local-minimal.yaml"))
    sqlite = build(minimal, RUN, None)
    assert sqlite.postgres is None
    assert "sqlite:///" in yaml.safe_load(sqlite.files[RUN / "private.yaml"])["database_url"]


def test_only_a_private_zone_may_name_a_database() -> None:
    doc = yaml.safe_load(Path("services/topology/local.yaml").read_text())
    doc["zones"][1]["database"] = {"engine": "postgresql"}
    with pytest.raises(TopologyError, match="database is only for private zones"):
        parse_topology(yaml.safe_dump(doc))
