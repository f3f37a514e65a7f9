"""The model registry: versioned model folders and a ``current.json`` pointer per model.

Layout under the registry root::

    <model_name>/versions/<version>/   model.joblib, model.json, release.json
    <model_name>/current.json          the version in production (written last, atomically)
    <model_name>/history.jsonl         one line per deployment or rollback

``deploy`` writes it and ``resolve_baseline`` reads it. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from typing import Any, Optional

CURRENT = "current.json"
HISTORY = "history.jsonl"
RELEASE = "release.json"


def _root(registry_uri: str) -> str:
    if "://" in registry_uri and not registry_uri.startswith("file://"):
        raise ValueError(f"registry {registry_uri}: only local folders are supported by this version")
    return registry_uri[len("file://"):] if registry_uri.startswith("file://") else registry_uri


def model_root(registry_uri: str, model_name: str) -> str:
    """Folder of one model in the registry."""
    return os.path.join(_root(registry_uri), model_name)


def current(registry_uri: str, model_name: str) -> Optional[dict[str, Any]]:
    """The production version's pointer (``current.json``), or None before the first deployment."""
    path = os.path.join(model_root(registry_uri, model_name), CURRENT)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def versions(registry_uri: str, model_name: str) -> list[str]:
    """Versions stored for a model, oldest first."""
    folder = os.path.join(model_root(registry_uri, model_name), "versions")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _write_json_atomically(path: str, content: dict[str, Any]) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def model_digest(model_dir: str) -> str:
    """SHA-256 of a model folder's serialized model."""
    digest = hashlib.sha256()
    with open(os.path.join(model_dir, "model.joblib"), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def publish(registry_uri: str, model_name: str, model_dir: str, release: dict[str, Any]) -> dict[str, Any]:
    """Copies a model into a new version folder, then points ``current.json`` at it.

    The pointer is written last and atomically: a reader sees either the old
    production model or the complete new one.

    Args:
        registry_uri: Registry root folder.
        model_name: Name of the model.
        model_dir: The model folder to publish.
        release: What to record with the version (metrics, blessing, run).

    Returns:
        The new ``current.json`` content; the current one with ``unchanged: True``
        when the model is byte for byte the one in production.
    """
    root = model_root(registry_uri, model_name)
    digest = model_digest(model_dir)
    previous = current(registry_uri, model_name)
    if previous and previous.get("model_sha256") == digest:
        return {**previous, "unchanged": True}
    existing = versions(registry_uri, model_name)
    version = f"v{len(existing) + 1:04d}"
    target = os.path.join(root, "versions", version)
    staging = f"{target}.staging-{os.getpid()}"
    shutil.copytree(model_dir, staging)
    with open(os.path.join(staging, RELEASE), "w", encoding="utf-8") as handle:
        json.dump({**release, "version": version}, handle, indent=2, sort_keys=True)
    os.replace(staging, target)
    pointer = {
        "model_name": model_name,
        "version": version,
        "model_dir": os.path.abspath(target),
        "previous_version": previous["version"] if previous else None,
        "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "metrics": release.get("metrics", {}),
        "run_id": release.get("run_id"),
        "model_sha256": digest,
    }
    _write_json_atomically(os.path.join(root, CURRENT), pointer)
    with open(os.path.join(root, HISTORY), "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"event": "deploy", **pointer}) + "\n")
    return pointer


def rollback(registry_uri: str, model_name: str, version: Optional[str] = None) -> dict[str, Any]:
    """Points ``current.json`` back at an earlier version (default: the one before the current).

    Raises:
        ValueError: There is nothing to roll back to, or the version does not exist.
    """
    pointer = current(registry_uri, model_name)
    if pointer is None:
        raise ValueError(f"{model_name} has never been deployed in {registry_uri}")
    target = version or pointer.get("previous_version")
    if not target:
        raise ValueError(f"{model_name} {pointer['version']} has no previous version to roll back to")
    if target not in versions(registry_uri, model_name):
        known = ", ".join(versions(registry_uri, model_name))
        raise ValueError(f"{model_name} has no version {target}; versions: {known}")
    root = model_root(registry_uri, model_name)
    target_dir = os.path.join(root, "versions", target)
    with open(os.path.join(target_dir, RELEASE), encoding="utf-8") as handle:
        release = json.load(handle)
    new = {
        "model_name": model_name,
        "version": target,
        "model_dir": os.path.abspath(target_dir),
        "previous_version": pointer["version"],
        "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "metrics": release.get("metrics", {}),
        "run_id": release.get("run_id"),
        "model_sha256": model_digest(target_dir),
        "rolled_back_from": pointer["version"],
    }
    _write_json_atomically(os.path.join(root, CURRENT), new)
    with open(os.path.join(root, HISTORY), "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"event": "rollback", **new}) + "\n")
    return new
