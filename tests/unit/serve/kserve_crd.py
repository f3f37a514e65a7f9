"""The InferenceService CRD's OpenAPI schema of each supported KServe release, as the API server checks objects.

The schemas are upstream artefacts, extracted unchanged from the release's CRD and kept here
gzipped (``kserve-crd/inferenceservice-<tag>.json.gz``: ``origin`` names the repository, tag, commit,
path and git blob; ``schema`` is the v1beta1 version's ``openAPIV3Schema``, the only version served):
kserve/kserve ``config/crd/full/serving.kserve.io_inferenceservices.yaml`` at v0.14.1, v0.15.2 and
v0.16.0 (the Helm chart's copy, ``charts/kserve-crd``, parses to the same schema). No package on PyPI
ships them (the kserve wheels and sdist hold the Python SDK only).

What the API server does with an object (Kubernetes "API concepts", field validation and CRD
structural schemas): a value the schema refuses (type, enum, required, pattern) is 422 Invalid;
a field the schema does not declare is pruned, or refused with ``fieldValidation=Strict`` (which
the deploy client sends). ``invalid`` checks the first with jsonschema, ``unknown_fields`` the second.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from typing import Any

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kserve-crd")
#: KServe minor version (components.deploy.cluster.KSERVE_MODE_NAMES) -> the release whose CRD is kept.
RELEASES = {"0.14": "v0.14.1", "0.15": "v0.15.2", "0.16": "v0.16.0"}


@functools.cache
def crd(version: str) -> dict[str, Any]:
    """{"origin": ..., "version": "v1beta1", "schema": ...} of a KServe minor version's CRD."""
    with gzip.open(os.path.join(HERE, f"inferenceservice-{RELEASES[version]}.json.gz"), "rt", encoding="utf-8") as f:
        return json.load(f)


def invalid(obj: dict[str, Any], version: str) -> list[str]:
    """The schema's refusals of an object (what the API server answers 422 Invalid), as "path: message"."""
    from jsonschema import Draft7Validator

    validator = Draft7Validator(crd(version)["schema"])
    return sorted(f".{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
                  for error in validator.iter_errors(obj))


def unknown_fields(obj: Any, version: str, schema: dict[str, Any] | None = None, path: str = "") -> list[str]:
    """Fields the schema does not declare (pruned by the API server, refused under strict field validation)."""
    schema = crd(version)["schema"] if schema is None else schema
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(obj, dict):
        found = []
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            if properties is not None and key in properties:
                found += unknown_fields(value, version, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += unknown_fields(value, version, extra, f"{path}.{key}")
            elif properties is not None:
                found.append(f"{path}.{key}")
        return found
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [f for i, item in enumerate(obj) for f in unknown_fields(item, version, schema["items"], f"{path}[{i}]")]
    return []
