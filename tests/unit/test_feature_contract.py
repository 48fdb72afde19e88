"""The feature contract's schema checks: what serving can feed, named when it cannot, and
manifests from before the contract still read."""

from __future__ import annotations

import pytest

from services.models.features import ContractError, schema_from_manifest


def entry(name: str, source: str, dtype: str = "string", default: object = "unknown") -> dict:
    return {"name": name, "dtype": dtype, "default": default, "source": source}


def test_legacy_sources_read_as_their_contract_names() -> None:
    schema = schema_from_manifest(
        [
            entry("user_feature_0", "user"),
            entry("item_feature_0", "item", "float", 0.0),
            entry("position", "context", default="1"),
        ]
    )
    assert [f.source for f in schema] == ["snapshot", "catalogue", "serving"]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([entry("affinity", "request_header")], "'affinity': source 'request_header'"),
        ([entry("ad_text", "candidate")], "'ad_text': a candidate feature must be a Candidate"),
        ([entry("item_id", "candidate", "float", 0.0)], "'item_id': Candidate ids are strings"),
        ([entry("price", "catalogue", "float", "cheap")], "'price': a float feature needs"),
        ([entry("segment", "snapshot", "category")], "'segment': dtype 'category'"),
        ([entry("item_id", "candidate"), entry("item_id", "candidate")], "repeats"),
    ],
)
def test_a_schema_serving_could_not_feed_is_refused_naming_the_feature(
    schema: list[dict], message: str
) -> None:
    with pytest.raises(ContractError, match=message):
        schema_from_manifest(schema)


def test_serving_takes_each_feature_from_its_source() -> None:
    from isthmus.ads.v1 import ads_pb2
    from services.public.ads.ranking import ItemTable, model_inputs

    schema = schema_from_manifest(
        [
            entry("item_id", "candidate"),
            entry("campaign_id", "candidate"),
            entry("item_feature_1", "catalogue"),
            entry("user_ctr_smoothed", "snapshot", "float", 0.01),
            entry("user_segment", "snapshot", default="other"),
            entry("position", "serving", default="1"),
        ]
    )
    items = ItemTable.build(schema, {"7": {"item_feature_1": "shoes"}})
    candidates = [
        ads_pb2.Candidate(ad_id="a", campaign_id="c1", item_id="7"),
        ads_pb2.Candidate(ad_id="b", campaign_id="c2", item_id="99"),  # not in the catalogue
        ads_pb2.Candidate(ad_id="c", campaign_id="c3"),  # no item at all
    ]
    got = model_inputs(schema, candidates, items, {"user_ctr_smoothed": 0.25, "user_segment": None})
    column = {name: values.ravel().tolist() for name, values in got.items()}
    assert column["item_id"] == ["7", "99", "unknown"]
    assert column["campaign_id"] == ["c1", "c2", "c3"]
    assert column["item_feature_1"] == ["shoes", "unknown", "unknown"]
    assert column["user_ctr_smoothed"] == [0.25] * 3
    assert column["user_segment"] == ["other"] * 3  # a null in the snapshot is the default
    assert column["position"] == ["1"] * 3
    anonymous = model_inputs(schema, candidates[:1], items, None)
    assert anonymous["user_ctr_smoothed"].ravel().tolist() == [pytest.approx(0.01)]
