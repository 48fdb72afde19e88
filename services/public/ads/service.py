"""The ranking service a replica runs, without Ray: models, rules and features, refreshed from
files, and `rank()` for one request. The Serve deployment and the plain grpc.aio server of the
benchmark both wrap this class, so they compare the same work."""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from isthmus.ads.v1 import ads_pb2
from services.core.errors import InvalidArgument
from services.models.registry import ModelRegistry, RegistryError
from services.public.ads import ranking
from services.public.ads.config import AdsConfig
from services.public.ads.models import ModelSet, Predictor, load_set
from services.public.ads.rules import RulesError, RuleSet, load_rules
from services.public.features.snapshot import FeatureSnapshot, SnapshotError, load_current

log = logging.getLogger(__name__)


_PENDING = Exception("not ranked yet")


def _user_row(features: FeatureSnapshot | None, user_id: str) -> Mapping[str, object] | None:
    return None if features is None or not user_id else features.lookup(user_id)


@dataclass(frozen=True)
class Health:
    """What a replica reports about itself (for logs, status and tests)."""

    models: tuple[str, ...]
    canary_weight: float
    rules: int
    features: str | None
    last_error: str | None


class RankService:
    def __init__(self, config: AdsConfig) -> None:
        self.config = config
        self._registry = ModelRegistry(config.registry_dir, config.model_name)
        self._lock = threading.Lock()
        self._stamps: dict[str, object] = {}
        self.last_error: str | None = None
        self.served: Counter[str] = Counter()  # answers per model version
        # Load: a replica without a model is not ready, so a bad registry fails the start
        # with the registry's message instead of serving nonsense.
        self.models: ModelSet = load_set(self._registry, config.ort_threads)
        self.rules: RuleSet = load_rules(config.rules_file, config.base_dir)
        self.features: FeatureSnapshot | None = self._load_features()
        self._stamps = self._file_stamps()

    # --- serving ---------------------------------------------------------------------------

    def rank(self, request: ads_pb2.RankRequest) -> ads_pb2.RankResponse:
        """One request. Raises InvalidArgument for a malformed request."""
        answer = self.rank_many([request])[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def rank_many(
        self, requests: Sequence[ads_pb2.RankRequest]
    ) -> list[ads_pb2.RankResponse | Exception]:
        """Several requests with one onnxruntime call per model version: the candidates of
        every valid request are stacked. Invalid requests get their exception in place."""
        models, rules, features = self.models, self.rules, self.features  # one consistent view
        answers: list[ads_pb2.RankResponse | Exception] = []
        groups: dict[str, list[int]] = {}
        picked: list[Predictor | None] = []
        for i, request in enumerate(requests):
            try:
                ranking.validate(request, self.config.max_candidates)
            except InvalidArgument as exc:
                answers.append(exc)
                picked.append(None)
                continue
            answers.append(_PENDING)
            choice = models.pick(request.pseudonymous_user_id or request.request_id)
            picked.append(choice)
            groups.setdefault(choice.version, []).append(i)
        for members in groups.values():
            chosen = picked[members[0]]
            assert chosen is not None
            inputs = [
                ranking.model_inputs(
                    chosen.schema,
                    requests[i].candidates,
                    chosen.items,
                    _user_row(features, requests[i].pseudonymous_user_id),
                )
                for i in members
            ]
            pctr = chosen.predict(ranking.stack(inputs))
            start = 0
            for i in members:
                n = len(requests[i].candidates)
                response = ranking.decide(
                    requests[i], pctr[start : start + n], rules, chosen.version
                )
                start += n
                if features is None and self.config.features_dir is not None:
                    response.degraded = True
                    response.degraded_reason = ads_pb2.DEGRADED_REASON_DEFAULT_FEATURES
                answers[i] = response
                self.served[chosen.version] += 1
        return answers

    def health(self) -> Health:
        return Health(
            models=self.models.versions,
            canary_weight=self.models.canary_weight,
            rules=len(self.rules.rules),
            features=None if self.features is None else self.features.version,
            last_error=self.last_error,
        )

    # --- refresh (blocking file I/O; call it off the event loop) ---------------------------

    def refresh(self) -> bool:
        """Pick up a new rollout, rules file, budget list or feature snapshot. Anything that
        fails to load is refused and logged; what was serving keeps serving. Returns True
        when something changed."""
        with self._lock:
            stamps = self._file_stamps()
            if stamps == self._stamps:
                return False
            changed = {k for k in stamps if stamps.get(k) != self._stamps.get(k)}
            errors: list[str] = []
            if "models" in changed:
                try:
                    self.models = load_set(self._registry, self.config.ort_threads, self.models)
                except RegistryError as exc:
                    errors.append(f"model refused, still serving {self.models.versions}: {exc}")
            if "rules" in changed:
                try:
                    self.rules = load_rules(self.config.rules_file, self.config.base_dir)
                except RulesError as exc:
                    errors.append(f"rules refused, previous rules stay: {exc}")
            if "features" in changed:
                try:
                    self.features = self._load_features() or self.features
                except (OSError, ValueError, SnapshotError) as exc:
                    errors.append(f"feature snapshot refused, previous stays: {exc}")
            for message in errors:
                log.error("%s", message)
            self.last_error = errors[-1] if errors else self.last_error
            self._stamps = stamps
            return True

    def _load_features(self) -> FeatureSnapshot | None:
        root = self.config.features_dir
        return None if root is None else load_current(root)

    def _file_stamps(self) -> dict[str, object]:
        """A cheap fingerprint per input: pointer files' (mtime, size, inode)."""
        registry = self._registry.root
        stamps: dict[str, object] = {
            "models": (_stat(registry / "CURRENT"), _stat(registry / "ROLLOUT.json")),
            "rules": (
                _stat(self.config.rules_file),
                *(
                    _stat(self.config.base_dir / r.campaigns_file)
                    for r in self.rules.rules
                    if r.campaigns_file
                ),
            ),
        }
        if self.config.features_dir is not None:
            stamps["features"] = _stat(self.config.features_dir / "CURRENT")
        return stamps


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
