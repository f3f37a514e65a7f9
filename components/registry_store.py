"""What every registry store shares: the layout's file names, the interface, and publish and rollback.

``components/registry.py`` (the local folder store, ``open_registry``) and
``components/object_store.py`` (the S3 store) both build on this; it imports neither, so the
two stores never import each other. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
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

    def start_experiment(self, model_name: str, pointer: dict[str, Any], traffic_percent: float,
                         **details: Any) -> dict[str, Any]:
        """Makes a published version the candidate of an online experiment (``canary.json``)."""

    def decide_experiment(self, model_name: str, version: str, decision: dict[str, Any]) -> dict[str, Any]:
        """Records an experiment's decision for whoever applies it, changing no traffic."""

    def promote(self, model_name: str, event: str = "promote", **details: Any) -> dict[str, Any]:
        """Makes the canary production, then clears it."""

    def rollback(self, model_name: str, version: Optional[str] = None) -> dict[str, Any]:
        """Points production back at an earlier version (default: the previous one)."""

    def history(self, model_name: str) -> list[dict[str, Any]]:
        """Every deployment and rollback, oldest first."""

    def download(self, model_name: str, version: str, destination: str) -> str:
        """Copies a version's files into a local folder; returns the folder."""


#: The keys of ``model.json`` that say how a model is served (its features, task and lookups):
#: the same fitted model served another way is another version.
SERVING_KEYS = ("features", "categorical_features", "numeric_features", "task", "positive_class", "lookup")


def model_digest(model_dir: str) -> str:
    """SHA-256 of a model folder's serialized model and of how it is served.

    The fitted model (``model.joblib``), ``model.json``'s ``SERVING_KEYS`` and the schema whose
    domains the server guards (``schema.pbtxt``, when there is one): a model identical in all
    three is production already; one served differently (a new lookup, a new schema) is a new version.
    """
    digest = hashlib.sha256()
    with open(os.path.join(model_dir, "model.joblib"), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    info_path = os.path.join(model_dir, "model.json")
    if os.path.exists(info_path):
        with open(info_path, encoding="utf-8") as handle:
            info = json.load(handle)
        digest.update(json.dumps({key: info.get(key) for key in SERVING_KEYS}, sort_keys=True).encode())
    schema_path = os.path.join(model_dir, "schema.pbtxt")
    if os.path.exists(schema_path):
        with open(schema_path, "rb") as handle:
            digest.update(handle.read())
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

    def start_experiment(self, model_name: str, pointer: dict[str, Any], traffic_percent: float,
                         **details: Any) -> dict[str, Any]:
        """Makes a published version the candidate of an online experiment with a share of the traffic.

        Returns:
            The canary pointer: the version's, with ``traffic_percent`` and ``experiment``
            (start time, the production version it is measured against, ``details``).

        Raises:
            ValueError: A share outside (0, 100), no production to compare with, or an experiment running.
        """
        if not 0 < traffic_percent < 100:
            raise ValueError(f"an experiment's traffic share must be between 0 and 100 %, got {traffic_percent}")
        production = self.current(model_name)
        if production is None:
            raise ValueError(f"{model_name} has no production version to run an experiment against")
        running = self.canary(model_name)
        if running is not None:
            raise ValueError(f"{model_name} {running['version']} is in an experiment already")
        canary = {**pointer, "traffic_percent": traffic_percent,
                  "experiment": {"started_at": _now(), "production_version": production["version"], **details}}
        self.set_canary(model_name, canary, "experiment_started")
        return canary

    def decide_experiment(self, model_name: str, version: str, decision: dict[str, Any]) -> dict[str, Any]:
        """Records an experiment's decision for whoever applies it (a cluster's releaser), changing no traffic.

        Returns:
            The canary pointer with ``experiment.decision``.

        Raises:
            ValueError: ``version`` is not the running experiment's candidate, or it has a decision already.
        """
        canary = self.canary(model_name)
        if not canary or not canary.get("experiment") or canary["version"] != version:
            raise ValueError(f"{model_name} {version} is not in an experiment")
        if canary["experiment"].get("decision"):
            raise ValueError(f"{model_name} {version}'s experiment is decided already: "
                             f"{canary['experiment']['decision'].get('outcome')}")
        decided = {**canary, "experiment": {**canary["experiment"], "decision": decision}}
        self.set_canary(model_name, decided, "experiment_decided")
        return decided

    def promote(self, model_name: str, event: str = "promote", **details: Any) -> dict[str, Any]:
        """Makes the canary production (``current.json`` first, then the canary cleared).

        Returns:
            The new production pointer (``details`` recorded in it).

        Raises:
            ValueError: There is no canary.
        """
        canary = self.canary(model_name)
        if canary is None:
            raise ValueError(f"{model_name} has no canary to promote in {self._location(model_name, '')}")
        pointer = {key: value for key, value in canary.items() if key not in ("traffic_percent", "experiment")}
        pointer.update(deployed_at=_now(), previous_version=(self.current(model_name) or {}).get("version"),
                       **details)
        self.point(model_name, pointer, event)
        self.set_canary(model_name, None, "promoted")
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
