"""What the training job reports about its candidates: the metrics table (Markdown, for the
README and notes) and the reliability plot (PNG, published beside the model)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

SETS = (("holdout", "holdout (random policy, last 20%)"), ("other_policy", "other policy's logs"))


def metrics_table(comparison: Mapping[str, Mapping[str, Any]], published: str) -> str:
    """One row per candidate and evaluation set: AUC [95% CI], log loss vs the base rate's,
    mean pCTR vs observed CTR, ECE."""
    lines = [
        "| model | evaluated on | rows | clicks | AUC [95% CI] | log loss (base rate) "
        "| mean pCTR / CTR | ECE |",
        "|---|---|---:|---:|---|---|---|---:|",
    ]
    for name, evaluation in comparison.items():
        label = f"**{name}** (published)" if name == published else name
        for key, title in SETS:
            m = evaluation.get(key)
            if m is None:
                continue
            low, high = m["auc_ci95"]
            cal = m["calibration"]
            lines.append(
                f"| {label} | {title} | {m['rows']} | {m['clicks']} "
                f"| {m['auc']:.3f} [{low:.3f}, {high:.3f}] "
                f"| {m['log_loss']:.5f} ({m['log_loss_base_rate']:.5f}) "
                f"| {cal['mean_pctr']:.5f} / {cal['observed_ctr']:.5f} | {cal['ece']:.5f} |"
            )
    return "\n".join(lines)


def reliability_png(comparison: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Mean pCTR against observed CTR per decile of pCTR, one panel per evaluation set, one
    line per candidate; the diagonal is perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(key, title) for key, title in SETS if any(key in e for e in comparison.values())]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels, strict=True):
        top = 0.0
        for name, evaluation in comparison.items():
            m = evaluation.get(key)
            if m is None:
                continue
            bins = m["calibration"]["bins"]
            x = [b["mean_pctr"] for b in bins]
            y = [b["ctr"] for b in bins]
            top = max(top, *x, *y)
            ax.plot(x, y, "o-", label=f"{name} (ECE {m['calibration']['ece']:.4f})")
        ax.plot([0, top], [0, top], "--", color="grey", label="perfectly calibrated")
        ax.set_title(f"{title}: {next(iter(comparison.values()))[key]['clicks']} clicks")
        ax.set_xlabel("mean pCTR in the decile (served)")
        ax.set_ylabel("observed CTR in the decile")
        ax.legend(fontsize="small")
    fig.suptitle("CTR model reliability, scored through the ranking service")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=90)
    plt.close(fig)
    return out.getvalue()
