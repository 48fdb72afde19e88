"""The feature contract between training and serving: what a CTR model may take as input and
where the ranking service finds each value. The training job writes it into the manifest
(`feature_schema`); the ranking service reads it back and refuses a model it could not feed.

A feature's `source` says where serving gets it, so a model can only ask for what a request,
the service's catalogue or the feature snapshot carries:

- `candidate`: a field of the `Candidate` message (`CANDIDATE_FIELDS`), e.g. the item id;
- `catalogue`: the item's row in the manifest's `item_features`, looked up by the
  candidate's `item_id` (the catalogue the service loads, so training must use the same);
- `snapshot`: a column of the viewer's row in the public feature snapshot, keyed by
  pseudonymous id (the default when the viewer is anonymous or not in it);
- `serving`: a value serving fixes for every candidate, its `default` (position 1: the
  candidates are compared as if shown in the same slot, while training gets the logged
  position so the position term absorbs position bias).

Manifests written before the contract said `item`, `user` and `context`; they are read as
`catalogue`, `snapshot` and `serving`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

SOURCES = ("candidate", "catalogue", "snapshot", "serving")
DTYPES = ("string", "float")
CANDIDATE_FIELDS = ("item_id", "campaign_id", "advertiser_id")
LEGACY_SOURCES = {"item": "catalogue", "user": "snapshot", "context": "serving"}


class ContractError(ValueError):
    """A feature schema that serving could not feed; the message names the feature."""


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # "string" or "float"
    default: str | float  # served when the source has no value
    source: str  # one of SOURCES

    def __post_init__(self) -> None:
        where = f"feature {self.name!r}"
        if self.dtype not in DTYPES:
            raise ContractError(f"{where}: dtype {self.dtype!r} is not one of {DTYPES}")
        if self.source not in SOURCES:
            raise ContractError(f"{where}: source {self.source!r} is not one of {SOURCES}")
        if self.source == "candidate" and self.name not in CANDIDATE_FIELDS:
            raise ContractError(
                f"{where}: a candidate feature must be a Candidate field {CANDIDATE_FIELDS}"
            )
        if self.source == "candidate" and self.dtype != "string":
            raise ContractError(f"{where}: Candidate ids are strings")
        if self.dtype == "float" and not isinstance(self.default, int | float):
            raise ContractError(f"{where}: a float feature needs a numeric default")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def schema_from_manifest(schema: Sequence[Mapping[str, Any]]) -> tuple[Feature, ...]:
    """The manifest's `feature_schema` as Features (legacy source names mapped). Raises
    ContractError naming the first feature serving could not feed, or a repeated name."""
    features = []
    for entry in schema:
        source = str(entry.get("source", ""))
        features.append(
            Feature(
                str(entry.get("name", "")),
                str(entry.get("dtype", "")),
                entry.get("default", ""),
                LEGACY_SOURCES.get(source, source),
            )
        )
    names = [f.name for f in features]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ContractError(f"feature schema repeats {repeated}")
    return tuple(features)
