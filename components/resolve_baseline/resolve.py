"""Baseline resolution: which model is in production now.

From ML Metadata (the latest blessed and deployed model, TFX's semantics) when
a store is configured, which is what a cluster has; otherwise from the
registry pointer that ``deploy`` writes.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Optional

from components import model_files, registry


def resolve_from_registry(registry_uri: str, model_name: str) -> Optional[dict[str, Any]]:
    """Returns the production model's pointer (version, model_dir, metrics), or None.

    A pointer whose model folder has gone is treated as no baseline, with a warning.
    """
    pointer = registry.current(registry_uri, model_name)
    if pointer is None:
        return None
    if not pointer["model_dir"].startswith("s3://") and not model_files.has_model(pointer["model_dir"]):
        print(f"[resolve_baseline] WARNING: production pointer names {pointer['model_dir']}, "
              "which holds no model; continuing without a baseline", flush=True)
        return None
    return pointer


def resolve_from_metadata(metadata_uri: str, model_name: str, registry_uri: Optional[str] = None,
                          namespace: Optional[str] = None,
                          pipeline_name: Optional[str] = None) -> Optional[dict[str, Any]]:
    """Returns the latest blessed and deployed model recorded in ML Metadata, or None.

    Only this namespace's deployments by runs of this pipeline count: a cluster's store holds
    every profile's runs, and another profile's model of the same name is not our production.
    After a rollback (done on the registry, outside any pipeline run) the model in production is
    the deployment of the version the registry points at; so is it after a canary or an online
    experiment's candidate was deployed (recorded as deployed, not production until promoted).
    """
    from components.lineage.queries import deployments
    from components.lineage.store import connect

    found = deployments(connect(metadata_uri), model_name, namespace, pipeline_name)
    pointer = registry.current(registry_uri, model_name) if registry_uri else None
    production = [d for d in found if pointer and d["version"] == pointer["version"]]
    if production or (pointer and pointer.get("rolled_back_from")):
        found = production
    else:
        found = [d for d in found if not d.get("canary")]
    latest = found[-1] if found else None
    if latest is None:
        return None
    model_dir = latest.get("model_dir") or ""
    if not model_dir.startswith("s3://") and not model_files.has_model(model_dir):
        print(f"[resolve_baseline] WARNING: the deployed model {latest.get('version')} is recorded at "
              f"{latest.get('model_dir')}, which holds no model; continuing without a baseline", flush=True)
        return None
    return latest


def materialize(pointer: Optional[dict[str, Any]], output_dir: str) -> dict[str, Any]:
    """Copies the baseline model into ``output_dir`` (left empty when there is none).

    The model folder may be local, or a version of the S3 registry of cluster deployments
    (``s3://bucket/prefix/<model>/versions/<version>``), which that registry downloads.

    Returns:
        Artifact metadata: ``found`` and, when found, version and metrics.
    """
    os.makedirs(output_dir, exist_ok=True)
    if pointer is None:
        return {"found": False}
    model_dir = pointer["model_dir"].rstrip("/")
    if model_dir.startswith("s3://"):
        model_root, _, version = model_dir.rpartition("/versions/")
        root, _, model_name = model_root.rpartition("/")
        registry.open_registry(root).download(model_name, version, output_dir)
    else:
        for name in os.listdir(model_dir):
            if os.path.isfile(os.path.join(model_dir, name)):
                shutil.copy2(os.path.join(model_dir, name), os.path.join(output_dir, name))
    return {"found": True, "version": pointer["version"], "source_dir": pointer["model_dir"],
            "metrics": pointer.get("metrics", {}), "run_id": pointer.get("run_id")}
