"""The Open Bandit Dataset sample, read straight out of the `obp` 0.4.1 wheel.

The wheel is fetched with `pip download --no-deps` (installing obp would pull in torch); its
CSVs are read with zipfile. Tests use `read_logs` on data they make themselves.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

OBP_VERSION = "0.4.1"
WHEEL = f"obp-{OBP_VERSION}-py3-none-any.whl"
DEFAULT_CACHE = Path("var/cache/obp")
CAMPAIGNS = ("all", "men", "women")  # the sample's campaigns; item ids are per campaign


@dataclass(frozen=True)
class Logs:
    """One campaign's logged impressions and its item catalogue."""

    events: pd.DataFrame  # timestamp, item_id, position, click, propensity, user_*, affinity_*
    items: pd.DataFrame  # item_id, item_feature_0..3
    fingerprint: str  # sha256 of the two CSVs, for the model manifest


def ensure_wheel(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """The obp wheel in `cache_dir`, downloaded (without dependencies) if missing."""
    wheel = cache_dir / WHEEL
    if not wheel.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 (fixed arguments)
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                f"obp=={OBP_VERSION}",
                "-d",
                str(cache_dir),
            ],
            check=True,
        )
    return wheel


def load_from_wheel(wheel: Path, policy: str = "random", campaign: str = "all") -> Logs:
    base = f"obp/dataset/obd/{policy}/{campaign}/"
    with zipfile.ZipFile(wheel) as archive:
        events = archive.read(f"{base}{campaign}.csv")
        items = archive.read(f"{base}item_context.csv")
    return read_logs(events, items)


def read_logs(events_csv: bytes, items_csv: bytes) -> Logs:
    """Parse the two CSVs and give the columns stable names."""
    events = pd.read_csv(io.BytesIO(events_csv), index_col=0)
    events = events.rename(
        columns=lambda c: (
            c.replace("user-item_affinity_", "affinity_")
            .replace("user_feature_", "user_feature_")
            .replace("propensity_score", "propensity")
        )
    )
    events["timestamp"] = pd.to_datetime(events["timestamp"], utc=True)
    items = pd.read_csv(io.BytesIO(items_csv), index_col=0)
    digest = hashlib.sha256(events_csv + b"\0" + items_csv).hexdigest()
    return Logs(
        events.sort_values("timestamp", kind="mergesort").reset_index(drop=True), items, digest
    )
