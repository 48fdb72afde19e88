"""Serving models in the KServe style: a model is loaded (checksum verified), then ready, then
predicts. A `ModelSet` is what a replica serves at one moment: the stable version and, during a
canary, a second version with its share of traffic. Sets are immutable; a refresh builds a new
one and swaps the reference, so a request in flight finishes on the set it started with."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from services.models.features import ContractError, schema_from_manifest
from services.models.registry import ModelRegistry, RegistryError, Rollout
from services.public.ads.ranking import ItemTable

log = logging.getLogger(__name__)


class Predictor:
    """One registry version, loaded into an onnxruntime session."""

    def __init__(
        self, version: str, manifest: Mapping[str, Any], onnx: bytes, threads: int
    ) -> None:
        self.version = version
        self.manifest = manifest
        try:
            self.schema = schema_from_manifest(manifest["feature_schema"])
        except ContractError as exc:
            raise RegistryError(f"model {version} cannot be served: {exc}") from exc
        self.items = ItemTable.build(self.schema, manifest.get("item_features", {}))
        output = manifest.get("output", {"name": "probabilities", "column": 1})
        self._output, self._column = str(output["name"]), int(output["column"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise RegistryError(f"model {version} does not load in onnxruntime: {exc}") from exc
        wanted = {f.name for f in self.schema}
        have = {i.name for i in self._session.get_inputs()}
        if wanted != have:
            raise RegistryError(
                f"model {version}: manifest schema {sorted(wanted)} != ONNX inputs {sorted(have)}"
            )
        self.ready = True

    def predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """pCTR per row: one onnxruntime call for every candidate of a request."""
        out = self._session.run([self._output], inputs)[0]
        return np.asarray(out[:, self._column], dtype=np.float64)


@dataclass(frozen=True)
class ModelSet:
    stable: Predictor
    canary: Predictor | None = None
    canary_weight: float = 0.0

    @property
    def versions(self) -> tuple[str, ...]:
        return (
            (self.stable.version,)
            if self.canary is None
            else (
                self.stable.version,
                self.canary.version,
            )
        )

    def pick(self, key: str) -> Predictor:
        """The version that answers this request: sticky per key (the viewer, or the request
        when anonymous), so one user sees one version during a canary."""
        if self.canary is None or not key:
            return self.stable
        return self.canary if bucket(key) < self.canary_weight else self.stable


def bucket(key: str) -> float:
    """A uniform number in [0, 1) from a key (blake2b, stable across processes)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def load_set(
    registry: ModelRegistry,
    threads: int,
    previous: ModelSet | None = None,
) -> ModelSet:
    """The set the registry's rollout asks for, reusing loaded versions from `previous`.
    Raises RegistryError if the stable version cannot be loaded; a canary that cannot be
    loaded is dropped (logged) and the stable version takes all traffic."""
    plan: Rollout = registry.rollout()
    loaded = {} if previous is None else _by_version(previous)

    def get(version: str) -> Predictor:
        if version in loaded:
            return loaded[version]
        model = registry.load(version)
        return Predictor(model.version, model.manifest, model.onnx, threads)

    stable = get(plan.stable)
    canary = None
    if plan.canary is not None and plan.canary != plan.stable:
        try:
            canary = get(plan.canary)
        except RegistryError as exc:
            log.error("canary %s refused; %s takes all traffic: %s", plan.canary, plan.stable, exc)
    weight = plan.canary_weight if canary is not None else 0.0
    return ModelSet(stable, canary, weight)


def _by_version(models: ModelSet) -> dict[str, Predictor]:
    out = {models.stable.version: models.stable}
    if models.canary is not None:
        out[models.canary.version] = models.canary
    return out
