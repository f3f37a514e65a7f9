"""The model registry: versioned model folders and a ``current.json`` pointer per model.

One interface (``registry_store.py``), two stores, chosen by the URI's scheme (``open_registry``):
a local folder (``LocalRegistry``, here) or ``s3://bucket/prefix`` (``S3Registry`` in
``object_store.py``).
Layout under the root, the same in both::

    <model_name>/versions/<version>/   model.joblib, model.json, reference.parquet, release.json
    <model_name>/current.json          the version in production (written last, atomically)
    <model_name>/canary.json           a version taking a share of the traffic, not yet production
    <model_name>/history.jsonl         one line per deployment, canary, promotion or rollback

Every caller goes through it: ``deploy`` publishes, ``resolve_baseline`` and ``fingerprint``
read the pointer, the model server follows it and rolls back, the monitor reads a version's
training sample. Standard library only (the S3 store imports minio when it is opened).
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Optional

from components.registry_store import (  # noqa: F401 - part of this module's API
    CANARY,
    CURRENT,
    HISTORY,
    RELEASE,
    Registry,
    RegistryStore,
    model_digest,
    new_pointer,
    rollback_target,
)


def open_registry(registry_uri: str) -> Registry:
    """The registry at a URI: a local folder (or ``file://``) or ``s3://bucket/prefix``.

    Raises:
        ValueError: The scheme is neither.
    """
    if registry_uri.startswith("s3://"):
        from components.object_store import S3Registry

        return S3Registry(registry_uri)
    if "://" in registry_uri and not registry_uri.startswith("file://"):
        raise ValueError(f"registry {registry_uri}: expected a local folder, file://... or s3://bucket/prefix")
    return LocalRegistry(registry_uri[len("file://"):] if registry_uri.startswith("file://") else registry_uri)


def local_copy(store: Registry, model_name: str, version: str, cache_root: str) -> str:
    """A local folder holding a version: its own folder in a local registry, else a download cached once."""
    if isinstance(store, LocalRegistry):
        return store.version_dir(model_name, version)
    folder = os.path.join(cache_root, model_name, version)
    if not os.path.isdir(folder):
        staging = f"{folder}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        store.download(model_name, version, staging)
        os.replace(staging, folder)
    return folder


class LocalRegistry(RegistryStore):
    """The registry in a local folder."""

    def __init__(self, root: str):
        """Args: root: the registry's folder (created on first publish)."""
        self.root = root

    def model_root(self, model_name: str) -> str:
        """Folder of one model."""
        return os.path.join(self.root, model_name)

    def version_dir(self, model_name: str, version: str) -> str:
        """Folder of one version."""
        return os.path.join(self.model_root(model_name), "versions", version)

    def _read_json(self, model_name: str, name: str) -> Optional[dict[str, Any]]:
        path = os.path.join(self.model_root(model_name), name)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def current(self, model_name: str) -> Optional[dict[str, Any]]:
        """The production pointer, or None before the first deployment."""
        return self._read_json(model_name, CURRENT)

    def versions(self, model_name: str) -> list[str]:
        """Versions stored for a model, oldest first."""
        folder = os.path.join(self.model_root(model_name), "versions")
        return sorted(n for n in os.listdir(folder) if "." not in n) if os.path.isdir(folder) else []

    def _write_json(self, model_name: str, name: str, content: Optional[dict[str, Any]]) -> None:
        path = os.path.join(self.model_root(model_name), name)
        if content is None:
            if os.path.exists(path):
                os.remove(path)
            return
        temporary = f"{path}.tmp-{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    def _record(self, model_name: str, event: str, pointer: dict[str, Any]) -> None:
        with open(os.path.join(self.model_root(model_name), HISTORY), "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"event": event, **pointer}) + "\n")

    def point(self, model_name: str, pointer: dict[str, Any], event: str = "deploy") -> None:
        """Makes a pointer production (``current.json``, atomically), recording ``event`` in the history."""
        self._write_json(model_name, CURRENT, pointer)
        self._record(model_name, event, pointer)

    def canary(self, model_name: str) -> Optional[dict[str, Any]]:
        """The version serving a canary share, or None."""
        return self._read_json(model_name, CANARY)

    def set_canary(self, model_name: str, pointer: Optional[dict[str, Any]], event: str = "canary") -> None:
        """Records (or, with None, clears) the canary version, with ``event`` in the history."""
        previous = self.canary(model_name)
        self._write_json(model_name, CANARY, pointer)
        if pointer or previous:
            self._record(model_name, event, pointer or previous)

    def _write_version(self, model_name: str, version: str, model_dir: str, release: dict[str, Any]) -> None:
        target = self.version_dir(model_name, version)
        staging = f"{target}.staging-{os.getpid()}"
        shutil.copytree(model_dir, staging)
        with open(os.path.join(staging, RELEASE), "w", encoding="utf-8") as handle:
            json.dump(release, handle, indent=2, sort_keys=True)
        os.replace(staging, target)

    def _read_release(self, model_name: str, version: str) -> dict[str, Any]:
        with open(os.path.join(self.version_dir(model_name, version), RELEASE), encoding="utf-8") as handle:
            return json.load(handle)

    def _location(self, model_name: str, version: str) -> str:
        return os.path.abspath(self.version_dir(model_name, version)) if version else self.root

    def _digest(self, model_name: str, version: str, release: dict[str, Any]) -> Optional[str]:
        return model_digest(self.version_dir(model_name, version))

    def history(self, model_name: str) -> list[dict[str, Any]]:
        """Every deployment and rollback, oldest first."""
        path = os.path.join(self.model_root(model_name), HISTORY)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def download(self, model_name: str, version: str, destination: str) -> str:
        """Copies a version's files into a local folder; returns the folder."""
        source = self.version_dir(model_name, version)
        if not os.path.isdir(source):
            raise ValueError(f"{model_name} has no version {version} in {self.root}")
        os.makedirs(destination, exist_ok=True)
        for name in os.listdir(source):
            if os.path.isfile(os.path.join(source, name)):
                shutil.copy2(os.path.join(source, name), os.path.join(destination, name))
        return destination


# Shorthands by URI, for callers that do one thing.
def current(registry_uri: str, model_name: str) -> Optional[dict[str, Any]]:
    """``open_registry(registry_uri).current(model_name)``."""
    return open_registry(registry_uri).current(model_name)


def production_version(registry_uri: str, model_name: str) -> str:
    """What identifies production now: ``<version>@<deployed_at>``, or ``none``.

    It changes with every deployment and rollback, so a task that takes it as an
    input is cached exactly as long as production stays the same.
    """
    pointer = current(registry_uri, model_name)
    if pointer is None:
        return "none"
    return f"{pointer['version']}@{pointer.get('deployed_at') or pointer.get('rolled_back_at') or ''}"


def versions(registry_uri: str, model_name: str) -> list[str]:
    """``open_registry(registry_uri).versions(model_name)``."""
    return open_registry(registry_uri).versions(model_name)


def publish(registry_uri: str, model_name: str, model_dir: str, release: dict[str, Any]) -> dict[str, Any]:
    """``open_registry(registry_uri).publish(...)``: a new version, made production."""
    return open_registry(registry_uri).publish(model_name, model_dir, release)


def rollback(registry_uri: str, model_name: str, version: Optional[str] = None) -> dict[str, Any]:
    """``open_registry(registry_uri).rollback(...)``."""
    return open_registry(registry_uri).rollback(model_name, version)
