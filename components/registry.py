"""The model registry: versioned model folders and a ``current.json`` pointer per model.

One interface, two stores, chosen by the URI's scheme (``open_registry``): a local folder
(``LocalRegistry``, here) or ``s3://bucket/prefix`` (``S3Registry`` in ``object_store.py``).
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

import hashlib
import json
import os
import shutil
import time
from typing import Any, Optional, Protocol

CURRENT = "current.json"
CANARY = "canary.json"
HISTORY = "history.jsonl"
RELEASE = "release.json"


class Registry(Protocol):
    """What every registry store offers."""

    def current(self, model_name: str) -> Optional[dict[str, Any]]:
        """The production pointer, or None before the first deployment."""

    def versions(self, model_name: str) -> list[str]:
        """Versions stored for a model, oldest first."""

    def publish(self, model_name: str, model_dir: str, release: dict[str, Any], point: bool = True) -> dict[str, Any]:
        """Stores a model folder as a new version, then (``point``) points production at it (last)."""

    def point(self, model_name: str, pointer: dict[str, Any], event: str = "deploy") -> None:
        """Makes a pointer production (``current.json``), recording ``event`` in the history."""

    def canary(self, model_name: str) -> Optional[dict[str, Any]]:
        """The version serving a canary share, or None."""

    def set_canary(self, model_name: str, pointer: Optional[dict[str, Any]], event: str = "canary") -> None:
        """Records (or, with None, clears) the canary version, with ``event`` in the history."""

    def rollback(self, model_name: str, version: Optional[str] = None) -> dict[str, Any]:
        """Points production back at an earlier version (default: the previous one)."""

    def history(self, model_name: str) -> list[dict[str, Any]]:
        """Every deployment and rollback, oldest first."""

    def download(self, model_name: str, version: str, destination: str) -> str:
        """Copies a version's files into a local folder; returns the folder."""


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


def model_digest(model_dir: str) -> str:
    """SHA-256 of a model folder's serialized model."""
    digest = hashlib.sha256()
    with open(os.path.join(model_dir, "model.joblib"), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_pointer(model_name: str, version: str, model_dir: str, previous: Optional[dict[str, Any]],
                release: dict[str, Any], digest: Optional[str], **extra: Any) -> dict[str, Any]:
    """The ``current.json`` content for a version going to production (both stores write this)."""
    return {"model_name": model_name, "version": version, "model_dir": model_dir,
            "previous_version": previous["version"] if previous else None, "deployed_at": _now(),
            "metrics": release.get("metrics", {}), "run_id": release.get("run_id"), "model_sha256": digest, **extra}


def rollback_target(model_name: str, pointer: Optional[dict[str, Any]], version: Optional[str],
                    known: list[str], where: str) -> str:
    """The version a rollback goes to.

    Raises:
        ValueError: There is nothing to roll back to, or the version does not exist.
    """
    if pointer is None:
        raise ValueError(f"{model_name} has never been deployed in {where}")
    target = version or pointer.get("previous_version")
    if not target:
        raise ValueError(f"{model_name} {pointer['version']} has no previous version to roll back to")
    if target not in known:
        raise ValueError(f"{model_name} has no version {target}; versions: {', '.join(known)}")
    return target


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


class RegistryStore:
    """What publishing and rolling back mean, once for every store; a store supplies the storage.

    A store implements ``current``, ``versions``, ``point`` and these four: ``_write_version``
    (a version's files plus its release record), ``_read_release``, ``_location`` (where a
    version lives, as the pointer names it) and ``_digest`` (of a stored version).
    """

    def publish(self, model_name: str, model_dir: str, release: dict[str, Any], point: bool = True) -> dict[str, Any]:
        """Stores a model folder as a new version, then (``point``) makes it production, written last.

        A reader sees either the old production model or the complete new one. With
        ``point=False`` only the version is stored: the caller makes it production (``point``)
        or a canary once it serves.

        Returns:
            The new pointer; the current one with ``unchanged: True`` when the model is byte
            for byte the one in production.
        """
        digest = model_digest(model_dir)
        previous = self.current(model_name)
        if previous and previous.get("model_sha256") == digest:
            return {**previous, "unchanged": True}
        version = f"v{len(self.versions(model_name)) + 1:04d}"
        self._write_version(model_name, version, model_dir, {**release, "version": version, "model_sha256": digest})
        pointer = new_pointer(model_name, version, self._location(model_name, version), previous, release, digest)
        if point:
            self.point(model_name, pointer, "deploy")
        return pointer

    def rollback(self, model_name: str, version: Optional[str] = None) -> dict[str, Any]:
        """Makes an earlier version production again (default: the one before the current).

        Raises:
            ValueError: There is nothing to roll back to, or the version does not exist.
        """
        pointer = self.current(model_name)
        where = self._location(model_name, "")
        target = rollback_target(model_name, pointer, version, self.versions(model_name), where)
        release = self._read_release(model_name, target)
        new = new_pointer(model_name, target, self._location(model_name, target), pointer, release,
                          self._digest(model_name, target, release), rolled_back_from=pointer["version"])
        self.point(model_name, new, "rollback")
        return new


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
