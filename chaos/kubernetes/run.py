"""`isthmus chaos run NAME --target kubernetes`: the drill's Kubernetes form
(`chaos/drills/kubernetes/NAME.yaml`) under Chaos Toolkit, against the cluster the
environment names (KUBECONFIG / ISTHMUS_KUBE_CONTEXT / ISTHMUS_KUBE_API_URL and each form's
ISTHMUS_* settings), `--var KEY=VALUE` replacing a value the form declares. The journal is
written beside the local drills' reports; the verdict is Chaos Toolkit's: passed when the
run completed and the steady state held after the method."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos.edits import with_variables

FORMS = Path(__file__).resolve().parents[1] / "drills" / "kubernetes"


def forms() -> list[str]:
    return sorted(p.stem for p in FORMS.glob("*.yaml"))


def form_file(name: str) -> Path:
    path = FORMS / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"no Kubernetes form of {name!r}; there are: {', '.join(forms())}")
    return path


def load_form(name: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The form as Chaos Toolkit loads it, with `variables` applied (unknown keys refused)."""
    from chaoslib.loader import load_experiment

    experiment: dict[str, Any] = load_experiment(str(form_file(name)))
    return with_variables(experiment, variables)


def verdict(journal: dict[str, Any]) -> str:
    """passed, deviated (the steady state did not hold after the method) or failed (the run
    did not complete, or an action of the method raised: Chaos Toolkit carries on past a
    failed action and may still call the run completed, but a drill whose fault was not
    made, or whose wait timed out, proved nothing) -- pure."""
    if journal.get("deviated"):
        return "deviated"
    if any(activity.get("status") == "failed" for activity in journal.get("run") or []):
        return "failed"
    return "passed" if journal.get("status") == "completed" else "failed"


def run_form(name: str, variables: dict[str, Any], report_dir: Path) -> tuple[str, Path]:
    """Run the form; returns its verdict and the journal's path."""
    from chaoslib.experiment import run_experiment

    experiment = load_form(name, variables)
    # chaoslib reads the rollback strategy from the settings only (Chaos Toolkit's CLI copies
    # the experiment's `runtime` there): without this, `rollbacks: {strategy: always}` would
    # be ignored and an interrupted drill would leave its fault in place.
    settings = {"runtime": experiment.get("runtime", {})}
    journal: dict[str, Any] = run_experiment(experiment, settings=settings)
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / f"{name}.kubernetes.journal.json"
    path.write_text(json.dumps(journal, indent=2, default=str) + "\n")
    return verdict(journal), path
