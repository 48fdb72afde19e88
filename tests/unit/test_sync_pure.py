"""Pure decisions of the Spark sync: line rules, allowlist, PII scan, smoothing, recency,
k-anonymity, consent, sink-log parsing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ray_jobs.sync import allowlist, features_logic, scan, schema, sinklog
from ray_jobs.sync.config import Location, Locations, RemoteStorageNotSupported
from ray_jobs.sync.session import spark_conf
from services.topology.model import DataSpec
from tests.support.events import BASE_US, MALFORMED, compact, line_corpus, records


def test_good_records_pass_every_rule() -> None:
    for rec in records(200, users=["p_a", "p_b"]):
        raw = {k: str(v) for k, v in rec.items()}
        assert schema.first_problem(raw) is None


@pytest.mark.parametrize(("line", "reason"), MALFORMED)
def test_malformed_lines_get_the_reason_that_names_the_field(line: str, reason: str) -> None:
    try:
        parsed = json.loads(line)
    except json.JSONDecodeError:
        parsed = None
    raw = None if parsed is None else {k: str(v) for k, v in parsed.items()}
    assert schema.first_problem(raw) == reason


def test_rules_reject_values_that_do_not_fit_the_type() -> None:
    good = {k: str(v) for k, v in records(1, users=["p_a"])[0].items()}
    assert schema.first_problem({**good, "position": "1.5"}) == "position: not a 32-bit integer"
    assert schema.first_problem({**good, "position": "9" * 10}) == "position: not a 32-bit integer"
    assert schema.first_problem({**good, "ad_id": ""}) is not None
    assert schema.first_problem({**good, "event_id": "e1\n"}) is not None
    assert schema.first_problem({**good, "conversion_currency": "eur"}) is not None


def test_java_patterns_are_anchored_at_the_absolute_end() -> None:
    rule = schema.FIELDS[0]
    assert schema.java_pattern(rule) == rf"^(?:{rule.pattern})\z"


def test_allowlist_accepts_exactly_the_allowed_columns() -> None:
    allowlist.check_columns(allowlist.ALLOWED.items())
    arrow = [(n, allowlist.ARROW_TYPES[t]) for n, t in allowlist.ALLOWED.items()]
    allowlist.check_columns(arrow, arrow=True)


def test_allowlist_fails_closed_on_an_extra_missing_or_retyped_column() -> None:
    with pytest.raises(allowlist.NotAllowlisted, match="not on the allowlist: region_code"):
        allowlist.check_columns([*allowlist.ALLOWED.items(), ("region_code", "string")])
    with pytest.raises(allowlist.NotAllowlisted, match="missing: segment"):
        allowlist.check_columns([(n, t) for n, t in allowlist.ALLOWED.items() if n != "segment"])
    with pytest.raises(allowlist.NotAllowlisted, match="clicks is double, not long"):
        allowlist.check_columns({**allowlist.ALLOWED, "clicks": "double"}.items())


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("alice@example.com", "e-mail"),
        ("x Alice.B+ads@mail.example.co.uk y", "e-mail"),
        ("+49 170 1234567", "phone number"),
        ("(030) 1234-5678", "phone number"),
        ("015112345678", "phone number"),
        ("p_2345672345672345672345ab", None),
        ("p_abcdefgh23456722", None),
        ("DE:de:regular", None),
        ("1-7d", None),
        ("12-34", None),
        # Spark part-file names carry UUIDs whose all-digit groups once read as a phone number.
        ("part-00000-0add2bdd-4831-9275-1234-34c31fdb89ab-c000.snappy.parquet", None),
        ("0add2bdd-4831-9275-1234-34c31fdb89ab call +49 170 1234567", "phone number"),
        ("+49 170 1234 567890", "phone number"),  # 15 digits: the E.164 maximum
        ("4111 1111 1111 1111", "payment card number"),
        ("4111111111111112", None),  # 16 digits, not a card (Luhn), too long for a phone
        # A uuid4 hex id that happens to be all digits (about 1 in 2.7 million): an id, not a
        # phone number (it once failed the demo's leak scan as one).
        ("35064222875745399982665407594670", None),
    ],
)
def test_pii_patterns(value: str, kind: str | None) -> None:
    assert scan.pii_kind(value) == kind


def test_scan_finds_forbidden_identifiers_inside_values() -> None:
    found = scan.findings(["ok", 3, "seg:u_0123abcd", "u_0123abcd"], forbidden={"u_0123abcd"})
    assert found == ["private identifier: u_01...", "private identifier: u_01..."]
    assert scan.findings(["p_x", "DE:de:light"], forbidden={"u_0123abcd"}) == []


def test_smoothed_ctr_shrinks_towards_the_prior() -> None:
    prior = features_logic.prior_ctr(10, 1000)
    assert prior == 0.01
    assert features_logic.smoothed_ctr(0, 0, prior, 100) == pytest.approx(0.01)
    assert features_logic.smoothed_ctr(1, 1, prior, 100) == pytest.approx(2 / 101)
    heavy = features_logic.smoothed_ctr(500, 1000, prior, 100)
    assert 0.45 < heavy < 0.5
    assert features_logic.prior_ctr(0, 0) == 0.0


def test_recency_buckets_and_activity_tiers() -> None:
    day = features_logic.DAY_US
    now = BASE_US
    assert features_logic.recency_bucket(now - 1, now) == "0-1d"
    assert features_logic.recency_bucket(now - day, now) == "1-7d"
    assert features_logic.recency_bucket(now - 7 * day, now) == "7-30d"
    assert features_logic.recency_bucket(now - 30 * day, now) == "30d+"
    assert [features_logic.activity_tier(n) for n in (0, 4, 5, 49, 50)] == [
        "light",
        "light",
        "regular",
        "regular",
        "heavy",
    ]
    assert features_logic.segment_name("de", "de-AT", "heavy") == "DE:de:heavy"
    assert features_logic.segment_name(None, "", "light") == "ZZ:und:light"


def test_segments_below_k_are_suppressed() -> None:
    sizes = {"DE:de:light": 20, "FR:fr:light": 19, "other": 50}
    assert features_logic.kept_segments(sizes, 20) == {"DE:de:light"}
    with pytest.raises(ValueError, match=r"k \(1\) must be >= 2"):
        features_logic.kept_segments(sizes, 1)


def test_explicit_refusal_of_personalised_ads_wins() -> None:
    channel = "CONTACT_CHANNEL_PERSONALIZED_ADS"
    allowed = features_logic.personalization_allowed
    assert allowed([]) is True
    assert allowed([{"channel": "CONTACT_CHANNEL_EMAIL", "granted": False}]) is True
    assert allowed([{"channel": channel, "granted": False, "update_us": 1}]) is False
    later_yes = [
        {"channel": channel, "granted": False, "update_us": 1},
        {"channel": channel, "granted": True, "update_us": 2},
    ]
    assert allowed(later_yes) is True


def test_locations_resolve_relative_paths_and_keep_remote_uris() -> None:
    locs = Locations.from_spec(DataSpec(warehouse_uri="s3a://bucket/wh/"))
    assert locs.events.uri == "s3a://bucket/wh/events"
    with pytest.raises(RemoteStorageNotSupported):
        _ = locs.events.path
    local = Location.of("var/x")
    assert local.is_local
    assert local.path.is_absolute()
    assert Location.of("file:///tmp/x").path.as_posix() == "/tmp/x"
    assert Locations.from_spec(DataSpec()).landing_files.endswith("/date=*/hour=*/*.jsonl")


def test_local_spark_stays_on_loopback() -> None:
    conf = spark_conf(DataSpec())
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.ui.enabled"] == "false"
    assert "spark.driver.host" not in spark_conf(DataSpec(spark_master="spark://h:7077"))


def test_driver_java_options_are_passed_only_when_given() -> None:
    assert "TieredStopAtLevel=1" in spark_conf(DataSpec())["spark.driver.extraJavaOptions"]
    assert "spark.driver.extraJavaOptions" not in spark_conf(DataSpec(driver_java_options=""))


def entry(path: str, size: int = 10, action: str = "add") -> str:
    return json.dumps(
        {
            "path": f"file://{path}",
            "size": size,
            "isDir": False,
            "modificationTime": 1,
            "blockReplication": 1,
            "blockSize": 33554432,
            "action": action,
        },
        separators=(",", ":"),
    )


def test_sink_log_live_files_follow_the_latest_compaction(tmp_path: Path) -> None:
    log = tmp_path / sinklog.METADATA
    log.mkdir()
    (log / "0").write_text("v1\n" + entry("/s/old.parquet"))  # superseded by 9.compact
    (log / "9.compact").write_text("v1\n" + entry("/s/a.parquet") + "\n" + entry("/s/b.parquet"))
    (log / "10").write_text(
        "v1\n" + entry("/s/c.parquet") + "\n" + entry("/s/a.parquet", action="delete")
    )
    (log / ".10.crc").write_text("x")
    assert sinklog.live_files(tmp_path) == [Path("/s/b.parquet"), Path("/s/c.parquet")]


def test_sink_log_patch_changes_only_the_named_entries() -> None:
    text = "v1\n" + entry("/s/a.parquet") + "\n" + entry("/s/b%3D1.parquet")
    patched = sinklog.patch_entries(text, {"/s/b=1.parquet": (7, 99)})
    assert patched is not None
    lines = patched.splitlines()
    assert lines[:2] == text.splitlines()[:2]
    assert json.loads(lines[2])["size"] == 7
    assert json.loads(lines[2])["modificationTime"] == 99
    assert sinklog.patch_entries(text, {"/s/z.parquet": (1, 1)}) is None


def test_a_landing_line_is_erased_by_its_id_field_or_any_mention_when_not_json() -> None:
    from ray_jobs.sync.erasure import erased_line

    ids = {"p_gone"}
    assert erased_line('{"event_id": "e1", "pseudonymous_user_id": "p_gone"}', ids)
    assert not erased_line('{"event_id": "e2", "pseudonymous_user_id": "p_kept"}', ids)
    # an id elsewhere in a well-formed record is not theirs (e.g. a campaign named like it)
    assert not erased_line('{"event_id": "e3", "campaign_id": "p_gone"}', ids)
    assert erased_line('{"event_id": bad json p_gone', ids)  # the quarantine's kind
    assert not erased_line("not json at all", ids)
    assert not erased_line('{"event_id": "e4", "pseudonymous_user_id": ["p_gone"]}', ids)


def test_the_one_match_check_agrees_with_the_rule_by_rule_check() -> None:
    """`whole_line_pattern` (what Spark runs on every line first) passes exactly the lines
    that `first_problem` (rule by rule, the reasons) passes, including values that hold the
    separator or the absent marker, which must not shift the fields into a match."""
    base = {
        "event_id": "e-1",
        "type": "click",
        "event_time_us": "1700000000000000",
        "ingest_time_us": "1700000000000001",
        "pseudonymous_user_id": "p_1",
        "rank_request_id": "r-1",
        "ad_id": "ad-1",
        "campaign_id": "c",
        "placement_id": "",
        "position": "2",
        "model_version": "m@1",
        "device_type": "1",
        "channel": "-3",
    }
    variants: list[dict[str, str | None]] = [dict(base)]
    for name in base:
        for value in (
            None,
            "",
            "x" * 129,
            "a b",
            "1.5",
            "a" + schema.SEPARATOR + "b",
            schema.ABSENT,
            schema.PRESENT + "1",
            "9" * 19,
            "-",
        ):
            variants.append({**base, name: value})
    for extra in (
        {"conversion_currency": "EUR"},
        {"conversion_currency": "eur"},
        {"conversion_value_minor": "12"},
        {"conversion_value_minor": schema.ABSENT},
    ):
        variants.append({**base, **extra})
    shifted = {**base, "type": "click" + schema.SEPARATOR + "1"}  # one field too many
    variants.append(shifted)
    verdicts = {schema.first_problem(v) is None for v in variants}
    assert verdicts == {True, False}  # both kinds are in the corpus
    for raw in variants:
        assert schema.passes_every_rule(raw) == (schema.first_problem(raw) is None), raw


def as_text(value: object) -> str:
    """A JSON value as the long way reads it into a text field."""
    return value if isinstance(value, str) else json.dumps(value)


def test_a_line_read_the_fast_way_is_one_the_long_way_accepts_with_the_same_values() -> None:
    """`canonical_values` (what Spark does first with every line) accepts the event writer's
    lines, and only lines that the parse and every rule accept, with the same text (a JSON
    integer's value, for "-0"). The Spark test compares the two ways on the same corpus."""
    corpus = line_corpus()
    fast = [line for line in corpus if schema.canonical_values(line) is not None]
    assert 50 < len(fast) < len(corpus) / 2  # both kinds, many of each
    for rec in records(100, users=["p_a", "p:b@c/d"], seed=5):
        assert schema.canonical_values(compact(rec)) == {k: as_text(v) for k, v in rec.items()}
    for line in fast:
        values = schema.canonical_values(line)
        assert values is not None
        parsed = json.loads(line)
        assert list(parsed) == list(values), line  # the same fields, none repeated
        text = {k: as_text(v) for k, v in parsed.items()}
        assert schema.first_problem(text) is None, line
        for rule in schema.FIELDS:
            if rule.name not in values:
                continue
            if rule.spark_type == "string":
                assert values[rule.name] == parsed[rule.name], line
            else:
                assert int(values[rule.name]) == parsed[rule.name], line


def test_the_fast_pattern_captures_each_field_once() -> None:
    """One group per field (the replacement `canonical_join` refers to them by number),
    and an empty group can only mean an absent optional field."""
    pattern = schema.python_pattern(schema.canonical_line_pattern())
    assert re.compile(pattern).groups == len(schema.FIELDS)
    assert schema.canonical_join().count("$") == len(schema.FIELDS)
    for rule in schema.FIELDS:
        if not rule.required:
            assert re.fullmatch(rule.pattern, "") is None, rule.name
        if rule.spark_type == "string":  # a value the pattern takes needs no JSON escape
            for char in '"\\':
                assert re.fullmatch(rule.pattern, f"a{char}b") is None, rule.name


def test_the_quarantine_table_skips_commits_empty_or_writes_a_batch() -> None:
    """No file for a batch the events write counted clean; the lines whenever the count is
    unknown (the events table had the batch: a re-run) or not zero; nothing twice."""
    from ray_jobs.sync.sync_events import quarantine_step

    assert quarantine_step(events_ran=True, quarantined=0, has_it=False) == "empty"
    assert quarantine_step(events_ran=True, quarantined=3, has_it=False) == "write"
    assert quarantine_step(events_ran=False, quarantined=None, has_it=False) == "write"
    assert quarantine_step(events_ran=False, quarantined=0, has_it=False) == "write"
    assert quarantine_step(events_ran=True, quarantined=0, has_it=True) == "skip"
    assert quarantine_step(events_ran=False, quarantined=None, has_it=True) == "skip"


def test_dedup_scan_sums_the_expiry_pass_over_batches_and_operators() -> None:
    from ray_jobs.sync.sync_events import dedup_scan

    def batch(rows: int, ms: int) -> dict[str, object]:
        operator = {"allRemovalsTimeMs": ms, "customMetrics": {"numRowsReadDuringEviction": rows}}
        return {"numInputRows": 1, "stateOperators": [operator]}

    assert dedup_scan([batch(1_000_000, 600), batch(1_001_000, 700)]) == (2_001_000, 1300)
    # A run with no batch, a batch without a state operator, metrics missing: nothing read.
    assert dedup_scan([]) == (0, 0)
    assert dedup_scan([{"numInputRows": 0, "stateOperators": []}]) == (0, 0)
    assert dedup_scan([{"stateOperators": [{"customMetrics": None}]}]) == (0, 0)
