"""KFP executor input/output for container components, without KFP.

A container component receives the whole executor input as JSON (the ``{{$}}``
placeholder) and reports its output artifacts and their metadata by writing the
executor output file itself: that is what makes downstream tasks see them both
in ``kfp.local`` and on a cluster. Standard library only, so every runtime
image can use it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, Optional

from components.errors import ComponentError, error_line  # noqa: F401 - part of this module's API

# Remote URIs are mounted at these paths inside KFP task pods (the KFP launcher
# does the same mapping for Python components).
_URI_PREFIX_TO_PATH = {
    "gs://": "/gcs/",
    "s3://": "/s3/",
    "minio://": "/minio/",
}


def uri_to_path(uri: str) -> str:
    """Maps an artifact URI to the local path where the task reads or writes it.

    Args:
        uri: Artifact URI: a local path (kfp.local) or a gs/s3/minio URI (cluster).

    Returns:
        The filesystem path for the URI.
    """
    for prefix, mount in _URI_PREFIX_TO_PATH.items():
        if uri.startswith(prefix):
            return mount + uri[len(prefix):]
    if uri.startswith("file://"):
        return uri[len("file://"):]
    return uri


#: Keys with which the KFP v2 backend wraps list and dict metadata values in MLMD
#: (``StructValueToMLMDValue``, kubeflow/pipelines backend/src/v2/metadata/converter.go, 2.5.0-2.17.0).
_BACKEND_WRAPPERS = {"list": list, "struct": dict}


def unwrap_metadata_value(value: Any) -> Any:
    """Undoes the KFP v2 backend's wrapping of one artifact metadata value.

    The backend stores a list as ``{"list": [...]}`` and a dict as ``{"struct": {...}}``
    and hands them back so to downstream tasks; booleans come back as 0/1 and every
    number as a float. ``kfp.local`` hands values back as written. This gives the
    written list or dict in both cases (numbers stay as they came).
    """
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key in _BACKEND_WRAPPERS and isinstance(inner, _BACKEND_WRAPPERS[key]):
            return inner
    return value


def unwrap_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """``unwrap_metadata_value`` over every top-level value of an artifact's metadata."""
    return {key: unwrap_metadata_value(value) for key, value in (metadata or {}).items()}


def _json_safe(value: Any) -> Any:
    """Replaces NaN and infinities, which protobuf JSON cannot carry, by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


class Executor:
    """Reads a KFP executor input and collects what the task reports back."""

    def __init__(self, executor_input: dict[str, Any]):
        """Wraps a parsed executor input.

        Args:
            executor_input: The executor input as a dict (KFP ExecutorInput JSON).
        """
        self._input = executor_input
        self._artifact_metadata: dict[str, dict[str, Any]] = {}
        self._parameters: dict[str, Any] = {}

    @classmethod
    def from_json(cls, text: str) -> Executor:
        """Builds an Executor from executor input JSON, or from ``@path`` to a JSON file."""
        if text.startswith("@"):
            with open(text[1:], encoding="utf-8") as handle:
                text = handle.read()
        return cls(json.loads(text))

    @property
    def task_dir(self) -> str:
        """The folder of this task's outputs (where the executor output file goes)."""
        return os.path.dirname(self._input["outputs"]["outputFile"])

    def param(self, name: str, default: Any = None) -> Any:
        """Returns an input parameter's value, or ``default`` when it was not given."""
        return self._input.get("inputs", {}).get("parameterValues", {}).get(name, default)

    def dataset_spec(self):
        """The dataset spec the pipeline passed (input parameter ``dataset_spec``, its canonical JSON).

        Raises:
            ComponentError: It is missing or not a valid spec (the message names the key and the problem).
        """
        from components.dataset_spec import DatasetSpec, SpecError

        text = self.param("dataset_spec")
        if not text:
            raise ComponentError("no dataset_spec was given: pass the spec's JSON (make run SPEC=path/spec.toml)")
        try:
            return DatasetSpec.from_json(text)
        except SpecError as error:
            raise ComponentError(str(error)) from None

    def _input_artifact(self, name: str) -> Optional[dict[str, Any]]:
        entry = self._input.get("inputs", {}).get("artifacts", {}).get(name)
        if not entry or not entry.get("artifacts"):
            return None
        return entry["artifacts"][0]

    def input_path(self, name: str) -> str:
        """Returns the local path of input artifact ``name``.

        Raises:
            ComponentError: The artifact was not passed to the task.
        """
        artifact = self._input_artifact(name)
        if artifact is None:
            raise ComponentError(f"input artifact {name!r} was not passed to this task")
        return uri_to_path(artifact["uri"])

    def input_metadata(self, name: str) -> dict[str, Any]:
        """Returns the metadata of input artifact ``name`` (empty when absent).

        Lists and dicts come back as they were written, whether a ``kfp.local`` run
        or the KFP v2 backend (which wraps them) passed them; numbers may come back
        as floats and booleans as 0/1 (the backend's conversion), so compare by value.
        """
        artifact = self._input_artifact(name)
        return unwrap_metadata(artifact.get("metadata", {})) if artifact else {}

    def _output_artifact(self, name: str) -> dict[str, Any]:
        try:
            return self._input["outputs"]["artifacts"][name]["artifacts"][0]
        except KeyError as exc:
            raise ComponentError(f"output artifact {name!r} is not declared by this component") from exc

    def output_path(self, name: str) -> str:
        """Returns the local path of output artifact ``name``, its parent folder created."""
        path = uri_to_path(self._output_artifact(name)["uri"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def output_uri(self, name: str) -> str:
        """Returns the URI of output artifact ``name``."""
        return self._output_artifact(name)["uri"]

    def set_metadata(self, name: str, metadata: dict[str, Any]) -> None:
        """Records metadata for output artifact ``name`` (merged over earlier calls).

        A value that is None (or NaN, or infinite) is left out: the KFP v2 backend fails
        the task on a null metadata value (converter.go has no null case), and a reader's
        ``.get(key)`` gives None for a missing key anyway.

        Raises:
            ValueError: A value is a dict whose only key is ``list`` or ``struct``: that is
                the backend's wrapping, and readers could not tell it from a wrapped value.
        """
        self._output_artifact(name)
        for key, value in _json_safe(metadata).items():
            if value is None:
                self._artifact_metadata.get(name, {}).pop(key, None)
                continue
            if unwrap_metadata_value(value) is not value:
                raise ValueError(f"metadata {name}.{key}: a dict whose only key is 'list' or 'struct' is "
                                 "reserved by the KFP backend's encoding; use another key")
            self._artifact_metadata.setdefault(name, {})[key] = value

    def set_parameter(self, name: str, value: Any) -> None:
        """Sets output parameter ``name``, in its output file and in the executor output."""
        spec = self._input["outputs"].get("parameters", {}).get(name)
        if spec is None:
            raise ComponentError(f"output parameter {name!r} is not declared by this component")
        if _json_safe(value) is None:
            raise ValueError(f"output parameter {name!r} is None: KFP parameters have no null; give a value")
        path = uri_to_path(spec["outputFile"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        text = value if isinstance(value, str) else json.dumps(value)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        self._parameters[name] = value

    def write(self) -> None:
        """Writes the executor output file with every output artifact and parameter."""
        artifacts = {}
        for name, entry in self._input["outputs"].get("artifacts", {}).items():
            artifact = dict(entry["artifacts"][0])
            artifact.pop("type", None)
            artifact["metadata"] = {**artifact.get("metadata", {}), **self._artifact_metadata.get(name, {})}
            artifacts[name] = {"artifacts": [artifact]}
            path = uri_to_path(artifact["uri"])
            if not os.path.exists(path):
                # Artifacts that live in metadata only (Metrics) still get a file: caches and
                # artifact stores treat an output without one as missing.
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as handle:
                    json.dump(artifact["metadata"], handle, indent=2)
        output = {"artifacts": artifacts, "parameterValues": _json_safe(self._parameters)}
        path = uri_to_path(self._input["outputs"]["outputFile"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(output, handle, indent=2)


def run_component(step: str, body: Callable[[Executor], None], argv: Optional[list] = None) -> int:
    """Runs a component program: parses ``--executor-input``, calls ``body``, writes outputs.

    Args:
        step: The step's name, used in error messages.
        body: Does the step's work through the Executor it is given.
        argv: Command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The process exit code: 0 on success, 1 when the step failed.
    """
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m components.{step}")
    parser.add_argument(
        "--executor-input", required=True,
        help="KFP executor input JSON (the {{$}} placeholder), or @path to a file holding it",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    executor = Executor.from_json(args.executor_input)
    code = 0
    try:
        body(executor)
    except ComponentError as exc:
        # Outputs written before the failure (an anomalies report, say) stay
        # readable in the task folder.
        executor.write()
        print(f"[{step}] FAILED: {exc}", file=sys.stderr, flush=True)
        code = 1
    except Exception:  # noqa: BLE001 - report any crash with its traceback, then fail the task
        traceback.print_exc()
        print(f"[{step}] FAILED with an unexpected error (traceback above)", file=sys.stderr, flush=True)
        code = 1
    else:
        executor.write()
    write_exit_status(executor.task_dir, code)
    return code


EXIT_STATUS = "exit_status.json"


def peak_memory_mb() -> Optional[float]:
    """This process's peak resident memory in MB (Linux ``VmHWM``), or None where there is none.

    Unlike ``ru_maxrss``, ``VmHWM`` starts afresh at ``exec``: it is not the parent's size.
    """
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None


def write_exit_status(task_dir: str, code: int) -> None:
    """Leaves the program's exit code and peak memory in the task folder.

    A container runner that lost the container (removed on exit before its status
    was read) can still tell success from failure.
    """
    try:
        os.makedirs(uri_to_path(task_dir), exist_ok=True)
        with open(os.path.join(uri_to_path(task_dir), EXIT_STATUS), "w", encoding="utf-8") as handle:
            json.dump({"exit_code": code, "peak_rss_mb": peak_memory_mb()}, handle)
    except OSError:
        pass
