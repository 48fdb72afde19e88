"""Validate custom resources offline against the operators' CRDs (../shared/crds).

The CRDs' `openAPIV3Schema` is OpenAPI 3.0, closest to JSON Schema draft 4 (`exclusiveMinimum:
true` is a boolean there). Two adaptations: `nullable: true` becomes a "null" type, and every
object that lists `properties` refuses other keys -- the API server would silently drop an
unknown field, so this is the only place a typo (`selectr:`) shows. What is not checked:
the operators' webhooks and CEL rules (`x-kubernetes-validations`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

SHARED_CRDS = Path(__file__).resolve().parents[2].parent / "shared" / "crds"


def load_crd_validators(
    root: Path = SHARED_CRDS,
) -> dict[tuple[str, str], jsonschema.Draft4Validator]:
    """(apiVersion, kind) -> validator, for every served version of every CRD under root."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found: dict[tuple[str, str], jsonschema.Draft4Validator] = {}
    for path in sorted(root.rglob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=loader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group = doc["spec"]["group"]
            kind = doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                schema = _strict(version["schema"]["openAPIV3Schema"])
                schema.setdefault("properties", {})
                schema["properties"]["apiVersion"] = {"enum": [f"{group}/{version['name']}"]}
                schema["properties"]["kind"] = {"enum": [kind]}
                schema["properties"]["metadata"] = {"type": "object", "required": ["name"]}
                found[(f"{group}/{version['name']}", kind)] = jsonschema.Draft4Validator(
                    schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
                )
    return found


def crd_errors(validators: dict[tuple[str, str], Any], doc: dict[str, Any]) -> list[str]:
    """Every schema error of one custom resource, as "path: message"."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key not in validators:
        return [f"no CRD for {key[0]} {key[1]}"]
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validators[key].iter_errors(doc)
    ]


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out
