"""The Spark data jobs end to end on one in-process session: quarantine with reasons,
cross-run dedup, the export scanned file by file, k-anonymity, consent, erasure, and the
training set."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow.parquet as pq
import pytest

from ray_jobs.sync import (
    allowlist,
    erasure,
    export_features,
    judge,
    scan,
    sinklog,
    sync_events,
    training_set,
)
from ray_jobs.sync.features_logic import SUPPRESSED
from ray_jobs.sync.private_source import read_private
from ray_jobs.sync.session import build_session
from services.public.features.snapshot import load_current
from services.topology.model import DataSpec
from tests.support.events import BASE_US, MALFORMED, compact, line_corpus, record
from tests.system.spark_world import World, land_events, make_world


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session = build_session(DataSpec(), "isthmus-sync-tests")
    yield session
    session.stop()


def test_the_driver_jvm_runs_with_the_configured_options(spark: Any) -> None:
    """The options reach the JVM PySpark launches (not only the session's conf)."""
    bean = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(bean.getInputArguments())
    for option in DataSpec().driver_java_options.split():
        assert option in arguments, arguments


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def warehouse_ids(spark: Any, world: World) -> list[str]:
    return [
        r.event_id for r in spark.read.parquet(world.locs.events.uri).select("event_id").collect()
    ]


def test_quarantine_keeps_good_lines_counts_reasons_and_dedups_across_runs(
    spark: Any, world: World
) -> None:
    good = land_events(world, 300, seed=1, prefix="a")
    path = world.landing.append(good[:20])  # a replay of 20 events ...
    with path.open("a") as out:  # ... in the same file as every kind of malformed line
        out.write("".join(line + "\n" for line, _ in MALFORMED))
    first = sync_events.run_available_now(spark, world.spec, world.locs)
    assert first.landing_lines == 300 + 20 + len(MALFORMED)
    assert sorted(warehouse_ids(spark, world)) == sorted(str(r["event_id"]) for r in good)
    expected = Counter(reason for _, reason in MALFORMED)
    assert sync_events.quarantine_counts(spark, world.locs) == dict(expected)
    sources = {r.source_file for r in spark.read.parquet(world.locs.quarantine.uri).collect()}
    assert {s.split(":", 1)[0] for s in sources} == {"file"}  # lineage: the file's URI
    assert {unquote(urlparse(s).path) for s in sources} == {str(path)}
    quarantine_files = sorted(world.locs.quarantine.path.rglob("*.parquet"))
    more = land_events(world, 50, seed=2, prefix="b")
    world.landing.append(good[100:150])  # replays of an earlier run's events
    second = sync_events.run_available_now(spark, world.spec, world.locs)
    assert second.landing_lines == 100
    ids = warehouse_ids(spark, world)
    assert len(ids) == len(set(ids)) == 350
    assert set(ids) == {str(r["event_id"]) for r in good + more}
    assert sync_events.quarantine_counts(spark, world.locs) == dict(expected)
    # The expiry pass read the whole dedup state: every id kept so far (and the quarantined
    # lines' keys, which it expires), not only this run's 50 new ones. The first run's batch
    # ran twice (its quarantine write evaluates the batch again), and so did the pass.
    assert 2 * 300 <= first.dedup_rows_scanned <= 2 * (300 + len(MALFORMED))
    assert 350 <= second.dedup_rows_scanned <= 350 + len(MALFORMED)
    # A batch without a bad line commits the quarantine log's entry without a file.
    assert sorted(world.locs.quarantine.path.rglob("*.parquet")) == quarantine_files


def test_the_file_sink_writes_with_the_options_it_is_given(spark: Any, tmp_path: Path) -> None:
    """Writer options reach parquet (how the event table turns the dictionary off for its
    per-event columns, `schema.EVENTS_WRITE_OPTIONS`): of two columns holding one value
    each, the one named in the option is written without a dictionary."""
    from ray_jobs.sync import schema
    from ray_jobs.sync.sinks import ParquetSink

    assert set(schema.EVENTS_WRITE_OPTIONS) == {
        f"parquet.enable.dictionary#{name}"
        for name in ("event_id", "rank_request_id", "event_time_us")
    }
    frame = spark.range(1000).selectExpr("'same' AS plain", "'same' AS coded")
    sink = ParquetSink(
        spark, (tmp_path / "t").as_uri(), [], {"parquet.enable.dictionary#plain": "false"}
    )
    sink.add_batch(0, frame)
    chunks = pq.ParquetFile(next((tmp_path / "t").glob("*.parquet"))).metadata.row_group(0)
    encodings = {
        chunks.column(i).path_in_schema: chunks.column(i).encodings
        for i in range(chunks.num_columns)
    }
    assert not any("DICTIONARY" in e for e in encodings["plain"]), encodings
    assert any("DICTIONARY" in e for e in encodings["coded"]), encodings


def test_the_fast_way_and_the_long_way_judge_every_line_alike(spark: Any) -> None:
    """Every line of a corpus of both kinds gets the same row (typed fields, reason, kept
    line, dedup key and time) whether the canonical lines take the fast way or all take the
    long way; and Spark's fast way takes exactly the lines `schema.canonical_values` (its
    Python mirror, checked against the rules in the unit tests) takes."""
    from pyspark.sql import functions as F

    from ray_jobs.sync import schema

    corpus = line_corpus()
    lines = spark.createDataFrame(
        [(line, f"file:///landing/{i % 3}.jsonl") for i, line in enumerate(corpus)],
        "value string, source_file string",
    )
    fast_lines = {r.line for r in judge.parsed(lines).where("_fast").select("line").collect()}
    assert fast_lines == {line for line in corpus if schema.canonical_values(line) is not None}

    def judged(fast_way: bool) -> list[Any]:
        # Dates as text: an event time of 18 nines is a valid 64-bit value, past Python's
        # last year.
        frame = judge.judged(lines, fast_way).withColumns(
            {name: F.col(name).cast("string") for name in ("event_date", "_ingest_ts")}
        )
        return frame.collect()

    both = [sorted(map(repr, judged(way))) for way in (True, False)]
    assert len(both[0]) == len(corpus)
    assert both[0] == both[1]
    reasons = Counter(r.reason for r in judged(True))
    assert reasons[None] > len(fast_lines)  # the long way accepts more (spaces, order, ...)
    assert len(reasons) > 10  # and quarantines many kinds


def test_the_judge_is_built_once_per_jvm_and_judges_every_frame_alike(spark: Any) -> None:
    """`judge.stages` builds the judge's columns once (per JVM and way); reused on frames
    other than the one they first judged, they give what a judge built afresh gives."""
    from pyspark.sql import functions as F

    built = judge.stages()
    assert judge.stages() is built
    assert judge.stages(fast_way=False) is not built

    def rows(frame: Any) -> list[str]:  # dates as text (see the test above)
        dates = {name: F.col(name).cast("string") for name in ("event_date", "_ingest_ts")}
        return sorted(map(repr, frame.withColumns(dates).collect()))

    corpus = line_corpus()
    for part in (corpus[::2], corpus[1::2]):
        lines = spark.createDataFrame(
            [(line, "file:///landing/a.jsonl") for line in part], "value string, source_file string"
        )
        cached = rows(judge.judged(lines))
        assert len(cached) == len(part)
        assert cached == rows(judge._apply(lines, judge._build(True)))


def test_a_line_whose_bytes_are_not_utf8_is_quarantined_whichever_way(
    spark: Any, tmp_path: Path
) -> None:
    """Bytes that are not UTF-8 (a foreign or corrupt landing file) are quarantined by both
    ways: Spark's regexp_replace hands such a line back decoded, not as it was, which must
    not pass for a canonical line's values."""
    from pyspark.sql import functions as F

    good = compact(record("e1", "p_a", random.Random(1), BASE_US))
    odd = [
        b"\xff",
        b"\xffa\x01b\x01c",
        good.replace('"e1"', '"e\xff1"').encode("latin-1"),
        good.replace('"e1"', '"e1\xc3"').encode("latin-1"),
    ]
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join(odd) + b"\n")
    lines = spark.read.text(str(path)).select("value", F.input_file_name().alias("source_file"))
    for fast_way in (True, False):
        rows = judge.judged(lines, fast_way).select("event_id", "reason").collect()
        assert len(rows) == len(odd)
        assert all(r.reason is not None and r.event_id is None for r in rows), rows


class _StaticReads:
    """A session whose `readStream` is its batch `read` (same builder calls): the sync's
    judging and dedup as one static frame, to drive its batch writer by hand."""

    def __init__(self, spark: Any) -> None:
        self.readStream = spark.read


def test_a_batch_run_again_after_a_crash_between_its_two_writes_lands_each_line_once(
    spark: Any, world: World
) -> None:
    good = land_events(world, 60, seed=4, prefix="c")
    path = world.landing.append(good[:5])  # replays, beside every kind of malformed line
    with path.open("a") as out:
        out.write("".join(line + "\n" for line, _ in MALFORMED))
    frame = judge.judged_lines(_StaticReads(spark), world.spec, world.locs)  # type: ignore[arg-type]
    batch = frame.dropDuplicates(["_key"])  # the stream's dedup, as a batch frame allows
    first = sync_events.BatchWriter(spark, world.locs)
    first(batch, 0)
    assert first.quarantine_batches == 1
    # The crash: the events table committed batch 0, the quarantine table had not.
    log = world.locs.quarantine.path / sinklog.METADATA
    (log / "0").unlink()
    (log / ".0.crc").unlink(missing_ok=True)
    rerun = sync_events.BatchWriter(spark, world.locs)  # a new process: new sinks
    rerun(batch, 0)  # events skipped, quarantine written
    sync_events.BatchWriter(spark, world.locs)(batch, 0)  # and again: both have it
    ids = warehouse_ids(spark, world)
    assert sorted(ids) == sorted(str(r["event_id"]) for r in good)
    expected = Counter(reason for _, reason in MALFORMED)
    assert sync_events.quarantine_counts(spark, world.locs) == dict(expected)
    assert rerun.quarantine_batches == 1


def scan_every_file(root: Path, forbidden: set[str]) -> list[str]:
    """Every file under the export's root: parquet decoded column by column (string columns
    scanned, every column name checked), JSON by its strings, anything else as text.
    Returns the problems found."""
    problems: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            table = pq.ParquetFile(path).read()
            columns = {f.name for f in table.schema}
            if columns - set(allowlist.ALLOWED):
                problems.append(f"{path}: columns {sorted(columns - set(allowlist.ALLOWED))}")
            for name in table.column_names:
                values = table.column(name).to_pylist()
                problems += [f"{path.name}.{name}: {f}" for f in scan.findings(values, forbidden)]
        elif path.suffix == ".json":  # typed like the columns: scan its strings and keys
            strings = list(json_strings(json.loads(path.read_text())))
            problems += [f"{path.name}: {f}" for f in scan.findings(strings, forbidden)]
        else:
            text = path.read_text()
            problems += [f"{path.name}: {f}" for f in scan.findings([text], forbidden)]
    return problems


def json_strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


def test_export_writes_only_allowlisted_non_personal_k_anonymous_features(
    spark: Any, world: World
) -> None:
    land_events(world, 2000, seed=3, prefix="c")
    sync_events.run_available_now(spark, world.spec, world.locs)
    inputs = read_private(world.config)
    report = export_features.export(spark, world.spec, world.locs, inputs, as_of_us=BASE_US)

    forbidden = (
        set(inputs.unified_ids) | {p.email for p in world.people} | {p.phone for p in world.people}
    )
    assert scan_every_file(world.locs.features.path, forbidden) == []
    # The scanner does see personal data when it is there.
    assert scan.findings(
        [world.people[1].email, world.people[1].phone, world.people[1].unified_id], forbidden
    )

    snapshot = load_current(world.locs.features.path)
    assert snapshot is not None
    assert snapshot.version == report.version
    assert snapshot.manifest["k"] == world.spec.k_anonymity
    assert snapshot.lookup(world.refuser.pseudonym) is None  # refused personalised ads
    segments = Counter(str(snapshot.lookup(p.pseudonym)["segment"]) for p in world.people[1:])  # type: ignore[index]
    assert all(n >= world.spec.k_anonymity for s, n in segments.items() if s != SUPPRESSED)
    italians = [p for p in world.people if p.region == "IT"]
    assert {snapshot.lookup(p.pseudonym)["segment"] for p in italians} == {SUPPRESSED}  # type: ignore[index]
    row = snapshot.lookup(world.people[5].pseudonym)
    assert row is not None
    prior = snapshot.manifest["prior_ctr"]
    expected = (row["clicks"] + prior * 100.0) / (row["impressions"] + 100.0)  # type: ignore[operator]
    assert row["ctr_smoothed"] == pytest.approx(expected)
    assert row["recency_bucket"] in {"0-1d", "1-7d", "7-30d", "30d+"}


def test_export_fails_closed_when_a_written_file_holds_a_personal_value(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    import pyarrow as pa

    columns = {n: pa.array([1], pa.int64()) for n in ("impressions", "clicks", "conversions")}
    table = pa.table(
        {
            "pseudonymous_user_id": pa.array(["someone@example.com"]),
            **columns,
            "ctr_smoothed": pa.array([0.1]),
            "recency_bucket": pa.array(["0-1d"]),
            "segment": pa.array(["DE:de:light"]),
        }
    )
    pq.write_table(table, staging / "part-0.parquet")
    with pytest.raises(export_features.ExportRefused, match="e-mail"):
        export_features.verify_written(staging, frozenset())
    pq.write_table(table.append_column("region_code", pa.array(["DE"])), staging / "part-0.parquet")
    with pytest.raises(export_features.ExportRefused, match="not on the allowlist: region_code"):
        export_features.verify_written(staging, frozenset())


def test_erase_removes_the_person_from_warehouse_quarantine_and_next_snapshot(
    spark: Any, world: World
) -> None:
    events = land_events(world, 1500, seed=4, prefix="d")
    victim = world.people[3]
    victim_line = json.dumps({"event_id": "bad id", "pseudonymous_user_id": victim.pseudonym})
    world.landing.append([]).write_text(victim_line + "\n")
    sync_events.run_available_now(spark, world.spec, world.locs)
    export_features.export(
        spark, world.spec, world.locs, read_private(world.config), as_of_us=BASE_US
    )
    mine = {str(e["event_id"]) for e in events if e["pseudonymous_user_id"] == victim.pseudonym}
    assert mine
    assert mine <= set(warehouse_ids(spark, world))

    world.store.erase(victim.unified_id, "user request", "test")
    ages = {p: p.stat().st_mtime_ns for p in world.locs.landing.path.rglob("*.jsonl")}
    report = erasure.erase(world.locs, read_private(world.config).erased)
    # A rewritten landing file keeps its age (the file source would take a new one for new).
    assert all(p.stat().st_mtime_ns == ns for p, ns in ages.items() if p.exists())
    assert report.rows_removed == len(mine) + 1  # events + the quarantined line
    # The public landing log too: every file was synced, so every line of theirs goes.
    assert report.landing_lines_removed == len(mine) + 1
    assert landing_mentions(world, victim.pseudonym) == 0
    later = land_events(world, 200, seed=5, prefix="f")  # new events keep arriving, some theirs
    sync_events.run_available_now(spark, world.spec, world.locs)
    export_features.export(
        spark, world.spec, world.locs, read_private(world.config), as_of_us=BASE_US
    )

    table = spark.read.parquet(world.locs.events.uri)
    assert table.where(table.pseudonymous_user_id == victim.pseudonym).count() == 0
    ids = [r.event_id for r in table.select("event_id").collect()]
    others = {
        str(e["event_id"]) for e in events + later if e["pseudonymous_user_id"] != victim.pseudonym
    }
    assert len(ids) == len(set(ids))
    assert set(ids) == others  # exactly once still holds for everyone else
    quarantine = spark.read.parquet(world.locs.quarantine.uri).collect()
    assert all(victim.pseudonym not in r.line for r in quarantine)
    for path in sinklog.live_files(world.locs.events.path):  # physically gone, not hidden
        assert (
            victim.pseudonym
            not in pq.ParquetFile(path).read().column("pseudonymous_user_id").to_pylist()
        )
    snapshot = load_current(world.locs.features.path)
    assert snapshot is not None
    assert snapshot.lookup(victim.pseudonym) is None
    assert snapshot.lookup(world.people[4].pseudonym) is not None
    theirs_later = [e for e in later if e["pseudonymous_user_id"] == victim.pseudonym]
    assert landing_mentions(world, victim.pseudonym) == len(theirs_later) > 0
    again = erasure.erase(world.locs, read_private(world.config).erased)
    assert again.rows_removed == 0  # the sync's anti-join kept them out of the warehouse
    assert again.landing_lines_removed == len(theirs_later)  # synced since: gone from landing
    assert landing_mentions(world, victim.pseudonym) == 0
    assert erasure.erase(world.locs, read_private(world.config).erased).landing_lines_removed == 0


def landing_mentions(world: World, pid: str) -> int:
    """Lines of the public landing log that carry `pid`."""
    return sum(
        line.count(pid)
        for path in world.locs.landing.path.rglob("*.jsonl")
        for line in path.read_text().splitlines()
    )


def test_training_set_labels_impressions_with_features_as_of_each(spark: Any, world: World) -> None:
    events = land_events(world, 1000, seed=6, prefix="t")
    sync_events.run_available_now(spark, world.spec, world.locs)
    inputs = read_private(world.config)
    report = training_set.build(spark, world.spec, world.locs, inputs)
    impressions = [e for e in events if e["type"] == "impression"]
    assert report.rows == len(impressions)
    rows = spark.read.parquet((world.locs.training.path / report.version).as_uri()).collect()
    assert {"clicked", "user_ctr_smoothed", "user_segment", "user_impressions"} <= set(
        rows[0].asDict()
    )
    assert 0 < report.rows_with_features < report.rows  # a first impression has no history
    # Recomputed here from the landed events: counts strictly before each impression.
    refused = world.refuser.pseudonym
    for row in rows:
        earlier = [
            e
            for e in events
            if e["pseudonymous_user_id"] == row.pseudonymous_user_id
            and int(str(e["event_time_us"])) < row.event_time_us
        ]
        if not earlier or row.pseudonymous_user_id == refused:
            assert row.user_impressions is None, row
            continue
        assert row.user_impressions == sum(e["type"] == "impression" for e in earlier), row
        assert row.user_clicks == sum(e["type"] == "click" for e in earlier), row


def test_a_click_after_an_impression_never_reaches_its_features(spark: Any, world: World) -> None:
    """The leak the old join (the current snapshot, computed over every event) had: plant an
    impression, its click a second later, and a later impression of the same user."""
    user = world.people[5].pseudonym
    rng = random.Random(1)
    t0 = BASE_US

    def event(event_id: str, kind: str, at_us: int, request: str, ad: str) -> dict[str, object]:
        base = record(event_id, user, rng, t0)
        base.update(type=kind, event_time_us=at_us, rank_request_id=request, ad_id=ad)
        base.pop("conversion_currency", None)
        base.pop("conversion_value_minor", None)
        return base

    world.landing.append(
        [
            event("imp0", "impression", t0 - 3_600_000_000, "r0", "ad0"),
            event("imp1", "impression", t0, "r1", "ad1"),
            event("clk1", "click", t0 + 1_000_000, "r1", "ad1"),
            event("imp2", "impression", t0 + 60_000_000, "r2", "ad2"),
        ]
    )
    sync_events.run_available_now(spark, world.spec, world.locs)
    inputs = read_private(world.config)
    report = training_set.build(spark, world.spec, world.locs, inputs)
    table = spark.read.parquet((world.locs.training.path / report.version).as_uri())
    rows = {r.event_id: r for r in table.collect()}
    assert rows["imp1"].clicked == 1
    assert (rows["imp1"].user_impressions, rows["imp1"].user_clicks) == (1, 0)  # imp0 only
    assert (rows["imp2"].user_impressions, rows["imp2"].user_clicks) == (2, 1)
    assert rows["imp0"].user_impressions is None  # nothing before it
    # What the old join read for imp1: the snapshot counts the click it is asked to predict.
    export_features.export(spark, world.spec, world.locs, inputs, as_of_us=t0 + 120_000_000)
    snapshot = load_current(world.locs.features.path)
    assert snapshot is not None
    seen = snapshot.lookup(user)
    assert seen is not None
    assert seen["clicks"] == 1


def test_a_batch_both_tables_committed_but_the_query_did_not_runs_again_without_a_copy(
    spark: Any, world: World
) -> None:
    """A crash after both tables' commits and before the checkpoint's: the re-run batch is
    skipped by both tables, yet must still run its dedup (Spark fails a foreachBatch batch
    whose state partitions were not all committed)."""
    good = land_events(world, 40, seed=5, prefix="d")
    sync_events.run_available_now(spark, world.spec, world.locs)
    commits = world.locs.sync_checkpoint.path / "commits"
    last = max(int(p.name) for p in commits.iterdir() if p.name.isdigit())
    (commits / str(last)).unlink()
    (commits / f".{last}.crc").unlink(missing_ok=True)
    again = sync_events.run_available_now(spark, world.spec, world.locs)
    assert again.batches == 1  # the batch ran again
    assert sorted(warehouse_ids(spark, world)) == sorted(str(r["event_id"]) for r in good)
    assert str(last) in {p.name for p in commits.iterdir()}
