"""Small CTR models for tests: synthetic logs in the Open Bandit CSV layout with a planted
signal, trained and published by the real training code."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ray_jobs.ctr import data
from ray_jobs.ctr.train import train
from services.models.registry import ModelRegistry

N_ITEMS = 6


def synthetic_logs(rows: int, seed: int) -> data.Logs:
    """Item 0 is clicked ten times as often as the others (a signal the serving contract
    carries: the candidate's item); users' features and affinities are noise, which the model
    must not need since serving cannot supply them."""
    rng = np.random.default_rng(seed)
    header = ["", "timestamp", "item_id", "position", "click", "propensity_score"]
    header += [f"user_feature_{i}" for i in range(4)]
    header += [f"user-item_affinity_{i}" for i in range(N_ITEMS)]
    lines = [",".join(header)]
    for r in range(rows):
        item = int(rng.integers(0, N_ITEMS))
        hot = rng.random() < 0.3
        p = 0.2 if item == 0 else 0.02
        click = int(rng.random() < p)
        users = ["hot" if hot else "cold", f"u{rng.integers(0, 3)}", "x", "y"]
        affinity = [f"{rng.random():.3f}" for _ in range(N_ITEMS)]
        stamp = f"2019-11-24 00:{r // 60 % 60:02d}:{r % 60:02d}.000000+00:00"
        lines.append(
            ",".join(
                [str(r), stamp, str(item), str(1 + r % 3), str(click), "0.1", *users, *affinity]
            )
        )
    items = [",item_id,item_feature_0,item_feature_1,item_feature_2,item_feature_3"]
    items += [f"{i},{i},{i / 10},a{i % 2},b,c{i % 3}" for i in range(N_ITEMS)]
    return data.read_logs("\n".join(lines).encode(), "\n".join(items).encode())


def publish_model(
    registry_root: Path, seed: int = 0, rows: int = 3000, current: bool = True
) -> str:
    """Train on synthetic logs and publish to `registry_root`; returns the version."""
    result = train(synthetic_logs(rows, seed), None, seed)
    return ModelRegistry(registry_root).publish(result.onnx, result.manifest, make_current=current)
