"""Everything the local runner takes from kfp.local beyond its public API, in one place.

kfp.local (kfp 2.17.3, ``kfp/local/``) has no hook for another task handler, no record of
cache hits and no reader for its cache entries, so the runner:

1. swaps ``subprocess_task_handler.SubprocessTaskHandler`` (tasks in the runtime environments)
   and ``docker_task_handler.DockerTaskHandler`` (container runs) for its own, for one run;
2. recognises a cache hit by the log line ``Task X cache hit (key=...)``
   (``kfp/local/orchestrator/task_executor.py``);
3. reads a cache entry file: a JSON object of outputs in which artifacts carry the marker
   ``__kfp_artifact__`` (``kfp/local/cache.py``);
4. recognises podman's answer for a container that exited and was removed before kfp.local
   attached to it (``no such container``, a 500 where Docker answers 404);
5. imports kfp without its API client (``import_kfp``).

``problems()`` checks each of these against the installed kfp; the runner refuses to run when
it finds any, so an upgrade of kfp fails loudly, naming what changed.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from typing import Any, Optional

#: The kfp these hooks were written against (images/dev/requirements.lock pins it).
KFP_VERSION = "2.17.3"
_ARTIFACT_MARKER = "__kfp_artifact__"
_CACHE_HIT = re.compile(r"Task (\S+) cache hit \(key=([0-9a-f]+)\)")


def import_kfp() -> None:
    """Imports the kfp package without ``kfp.client``, which a local run never uses.

    kfp's ``kfp/__init__.py`` imports ``kfp.client`` (and through it the Kubernetes client: 0.2 s of
    every local run, a cached rerun's included) unless ``_KFP_RUNTIME`` is ``true``, the switch kfp's
    own task command sets for the same reason (``kfp/dsl/component_factory.py``). It is set only while
    the package's ``__init__`` runs: ``kfp.dsl``, ``kfp.components`` and ``kfp.local`` are imported
    afterwards as usual, whole, and the tasks' environments never see it. Nothing happens once kfp is
    imported.
    """
    import sys

    if "kfp" in sys.modules:
        return
    previous = os.environ.get("_KFP_RUNTIME")
    os.environ["_KFP_RUNTIME"] = "true"
    try:
        import kfp  # noqa: F401 - the package alone
    finally:
        if previous is None:
            del os.environ["_KFP_RUNTIME"]
        else:
            os.environ["_KFP_RUNTIME"] = previous


def problems() -> list[str]:
    """What changed in kfp.local that the runner relies on (empty while it is the pinned kfp)."""
    import inspect

    import kfp
    from kfp.local import cache, subprocess_task_handler
    from kfp.local.orchestrator import task_executor

    found = []
    if kfp.__version__ != KFP_VERSION:
        found.append(f"kfp is {kfp.__version__}, this runner was written against {KFP_VERSION}")
    if not hasattr(subprocess_task_handler, "SubprocessTaskHandler"):
        found.append("kfp.local.subprocess_task_handler.SubprocessTaskHandler is gone (swapped for ours)")
    try:
        from kfp.local import docker_task_handler

        if not hasattr(docker_task_handler, "DockerTaskHandler"):
            found.append("kfp.local.docker_task_handler.DockerTaskHandler is gone (wrapped for container runs)")
    except ImportError:
        pass  # only needed with a Docker API; its absence is reported when containers are asked for
    if getattr(cache, "_ARTIFACT_MARKER", None) != _ARTIFACT_MARKER:
        found.append(f"kfp.local's cache entries no longer mark artifacts with {_ARTIFACT_MARKER!r}")
    if "cache hit (key=" not in inspect.getsource(task_executor):
        found.append("kfp.local no longer logs 'Task X cache hit (key=...)', which marks cached tasks")
    return found


@contextlib.contextmanager
def subprocess_handler(factory: Callable[..., Any]) -> Iterator[None]:
    """kfp.local runs ``SubprocessRunner`` tasks with ``factory(**handler kwargs)`` within the block."""
    from kfp.local import subprocess_task_handler

    original = subprocess_task_handler.SubprocessTaskHandler
    subprocess_task_handler.SubprocessTaskHandler = factory
    try:
        yield
    finally:
        subprocess_task_handler.SubprocessTaskHandler = original


@contextlib.contextmanager
def docker_handler(subclass: Callable[[type], type]) -> Iterator[None]:
    """kfp.local runs ``DockerRunner`` tasks with ``subclass(original handler class)`` within the block."""
    from kfp.local import docker_task_handler

    original = docker_task_handler.DockerTaskHandler
    docker_task_handler.DockerTaskHandler = subclass(original)
    try:
        yield
    finally:
        docker_task_handler.DockerTaskHandler = original


class CacheHits(logging.Handler):
    """Collects kfp.local's cache-hit log records as (task name, cache key)."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.hits: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keeps a record that reports a cache hit."""
        match = _CACHE_HIT.search(record.getMessage())
        if match:
            self.hits.append((match.group(1), match.group(2)))


def read_cache_entry(cache_root: str, key_prefix: str) -> Optional[tuple[dict[str, dict], dict[str, Any]]]:
    """A cache entry's outputs: ({artifact name: {name, uri, metadata}}, {parameter: value}), or None."""
    entries = glob.glob(os.path.join(cache_root, f"{key_prefix}*.json"))
    if len(entries) != 1:
        return None
    with open(entries[0], encoding="utf-8") as handle:
        outputs = json.load(handle)
    artifacts, parameters = {}, {}
    for name, value in outputs.items():
        if isinstance(value, dict) and value.get(_ARTIFACT_MARKER):
            artifacts[name] = {"name": value["name"], "uri": value["uri"], "metadata": value.get("metadata") or {}}
        else:
            parameters[name] = value
    return artifacts, parameters


def is_vanished_container(error: Exception) -> bool:
    """Whether a Docker API error is podman's for a container auto-removed before kfp.local attached."""
    return "no such container" in str(error)
