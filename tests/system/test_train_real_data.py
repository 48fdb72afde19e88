"""`isthmus train` on the real Open Bandit sample (fetched from the obp wheel): a model is
published with honest metrics, ONNX agrees with scikit-learn, and it is calibrated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from services.models.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]


def test_train_publishes_a_calibrated_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "train",
            "--registry",
            str(tmp_path),
            "--cache",
            str(ROOT / "var" / "cache" / "obp"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    loaded = ModelRegistry(tmp_path).load()
    assert loaded.version == summary["version"]
    holdout = loaded.manifest["metrics"]["holdout"]
    assert holdout["rows"] == 2000
    assert 0 <= holdout["auc_ci95"][0] <= holdout["auc"] <= holdout["auc_ci95"][1] <= 1
    calibration = holdout["calibration"]
    assert abs(calibration["mean_pctr"] - calibration["observed_ctr"]) < 0.005
    assert loaded.manifest["serving_sklearn_max_abs_diff"] < 1e-6
    # Only what serving has: nothing from the Open Bandit user columns or the affinities.
    sources = {f["name"]: f["source"] for f in loaded.manifest["feature_schema"]}
    assert sources["item_id"] == "candidate"
    assert sources["position"] == "serving"
    assert not [n for n in sources if n.startswith(("user_feature", "affinity"))]
