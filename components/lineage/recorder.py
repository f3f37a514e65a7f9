"""Records a local run folder into ML Metadata, with the names the KFP backend uses.

Per run: a ``system.PipelineRun`` context (parameters, pipeline version, git
sha, trigger, status, times) inside a ``system.Pipeline`` context; per task a
``system.ContainerExecution`` (image, runtime, start, end, duration, state:
COMPLETE, FAILED or CACHED, input parameters); per artifact its URI, type and
metadata as properties, with INPUT and OUTPUT events. Recording is idempotent:
a run recorded twice is recorded once.
"""

from __future__ import annotations

import json
import os
from typing import Any

from components.kfp_io import unwrap_metadata_value
from components.run_folder import RUN_INFO, TASK_INPUT, TASK_TIMING, read_json, run_id_of, task_folders

CONTEXT_PIPELINE = "system.Pipeline"
CONTEXT_RUN = "system.PipelineRun"
EXECUTION_TYPE = "system.ContainerExecution"
ARTIFACT_TYPES = ("system.Artifact", "system.Dataset", "system.Model", "system.Metrics",
                  "system.ClassificationMetrics", "system.HTML", "system.Markdown")


def set_value(target, key: str, value: Any) -> None:
    """Stores a Python value in an MLMD properties map (nested values as JSON text)."""
    if value is None:
        return
    slot = target[key]
    if isinstance(value, bool):
        slot.bool_value = value
    elif isinstance(value, int):
        slot.int_value = value
    elif isinstance(value, float):
        slot.double_value = value
    elif isinstance(value, str):
        slot.string_value = value
    else:
        slot.string_value = json.dumps(value, sort_keys=True, default=str)


def get_value(properties, key: str, default: Any = None) -> Any:
    """Reads a value stored by ``set_value`` (JSON text decoded back) or by the KFP backend.

    The backend stores lists and dicts as MLMD struct values wrapped in ``{"list": ...}`` or
    ``{"struct": ...}`` (components/lineage/kfp_backend.py): they come back as written.
    """
    if key not in properties:
        return default
    value = properties[key]
    kind = value.WhichOneof("value")
    if kind == "struct_value":
        from google.protobuf import json_format

        return unwrap_metadata_value(json_format.MessageToDict(value.struct_value))
    if kind == "string_value":
        text = value.string_value
        if text[:1] in "[{":
            try:
                return json.loads(text)
            except ValueError:
                return text
        return text
    return getattr(value, kind) if kind else default


def _type_id(store, kind: str, name: str) -> int:
    from ml_metadata.proto import metadata_store_pb2 as pb

    message = {"context": pb.ContextType, "execution": pb.ExecutionType, "artifact": pb.ArtifactType}[kind]()
    message.name = name
    return getattr(store, f"put_{kind}_type")(message, can_add_fields=True)


def _context(store, type_name: str, name: str, properties: dict[str, Any]) -> Any:
    from ml_metadata.proto import metadata_store_pb2 as pb

    context = store.get_context_by_type_and_name(type_name, name)
    if context is None:
        context = pb.Context(type_id=_type_id(store, "context", type_name), name=name)
    for key, value in properties.items():
        set_value(context.custom_properties, key, value)
    [context.id] = store.put_contexts([context])
    return context


def _tasks(run_dir: str) -> list[dict[str, Any]]:
    tasks = [{"name": name, "dir": folder,
              "timing": read_json(os.path.join(folder, TASK_TIMING)),
              "input": read_json(os.path.join(folder, TASK_INPUT)) or {},
              "output": read_json(os.path.join(folder, "executor_output.json")) or {}}
             for name, folder in task_folders(run_dir).items()]
    return sorted(tasks, key=lambda t: t["timing"].get("started") or 0)



def _artifact(store, uri: str, type_name: str, name: str, metadata: dict[str, Any], contexts) -> int:
    from ml_metadata.proto import metadata_store_pb2 as pb

    existing = [a for a in store.get_artifacts_by_uri(uri)]
    artifact = existing[0] if existing else pb.Artifact(type_id=_type_id(store, "artifact", type_name), uri=uri)
    artifact.state = pb.Artifact.LIVE
    set_value(artifact.custom_properties, "display_name", name)
    for key, value in metadata.items():
        set_value(artifact.custom_properties, key, value)
    [artifact_id] = store.put_artifacts([artifact])
    store.put_attributions_and_associations(
        [pb.Attribution(artifact_id=artifact_id, context_id=c.id) for c in contexts], [])
    return artifact_id


def record_run(store, run_dir: str) -> dict[str, int]:
    """Records a run folder (``run.json`` and every task folder) into the store.

    Returns:
        Counts of what was written: executions and artifacts (0 when the run was recorded already).
    """
    from ml_metadata.proto import metadata_store_pb2 as pb

    info = read_json(os.path.join(run_dir, RUN_INFO)) or {}
    run_id = run_id_of(run_dir)
    pipeline_name = info.get("pipeline_name", "continuous-training")
    pipeline = _context(store, CONTEXT_PIPELINE, pipeline_name, {})
    run = _context(store, CONTEXT_RUN, run_id, {
        "pipeline_name": pipeline_name,
        "pipeline_version": info.get("pipeline_version"),
        "git_sha": info.get("git_sha"),
        "trigger": info.get("trigger", "on_demand"),
        "parameters": info.get("effective_parameters") or info.get("parameters", {}),
        "status": info.get("status"),
        "started_at": info.get("started"),
        "ended_at": info.get("ended"),
        "run_dir": os.path.abspath(run_dir),
        "caching": info.get("caching"),
    })
    contexts = [pipeline, run]
    execution_type = _type_id(store, "execution", EXECUTION_TYPE)
    counts = {"executions": 0, "artifacts": 0}
    for task in _tasks(run_dir):
        name = f"{run_id}/{task['name']}"
        if store.get_execution_by_type_and_name(EXECUTION_TYPE, name) is not None:
            continue
        timing = task["timing"]
        state = (pb.Execution.CACHED if timing.get("cached")
                 else pb.Execution.COMPLETE if timing.get("exit_code") == 0 else pb.Execution.FAILED)
        execution = pb.Execution(type_id=execution_type, name=name, last_known_state=state)
        properties = execution.custom_properties
        set_value(properties, "task_name", task["name"])
        set_value(properties, "display_name", task["name"])
        set_value(properties, "run_id", run_id)
        set_value(properties, "image", timing.get("image"))
        set_value(properties, "runtime", timing.get("runtime"))
        set_value(properties, "executor", "kfp.local + per-runtime task handler")
        set_value(properties, "started_at", timing.get("started"))
        set_value(properties, "ended_at", timing.get("ended"))
        set_value(properties, "duration_seconds", timing.get("seconds"))
        set_value(properties, "exit_code", timing.get("exit_code"))
        set_value(properties, "cached_from", timing.get("cached_from"))
        set_value(properties, "inputs", task["input"].get("inputs", {}).get("parameterValues", {}))
        events_and_artifacts = []
        for artifact_name, entry in task["input"].get("inputs", {}).get("artifacts", {}).items():
            for artifact in entry.get("artifacts", []):
                artifact_id = _artifact(store, artifact["uri"], artifact.get("type", {}).get(
                    "schemaTitle", "system.Artifact"), artifact_name, artifact.get("metadata", {}), contexts)
                events_and_artifacts.append((artifact_id, pb.Event.INPUT, artifact_name))
        if state != pb.Execution.FAILED:
            declared = task["input"].get("outputs", {}).get("artifacts", {})
            for artifact_name, entry in task["output"].get("artifacts", {}).items():
                for artifact in entry.get("artifacts", []):
                    type_name = (declared.get(artifact_name, {}).get("artifacts", [{}])[0]
                                 .get("type", {}).get("schemaTitle", "system.Artifact"))
                    artifact_id = _artifact(store, artifact["uri"], type_name, artifact_name,
                                            artifact.get("metadata", {}), contexts)
                    events_and_artifacts.append((artifact_id, pb.Event.OUTPUT, artifact_name))
                    counts["artifacts"] += 1
            set_value(properties, "outputs", task["output"].get("parameterValues", {}))
        [execution.id] = store.put_executions([execution])
        events = []
        for artifact_id, kind, key in events_and_artifacts:
            event = pb.Event(artifact_id=artifact_id, execution_id=execution.id, type=kind)
            step = event.path.steps.add()
            step.key = key
            events.append(event)
        if events:
            store.put_events(events)
        store.put_attributions_and_associations(
            [], [pb.Association(execution_id=execution.id, context_id=c.id) for c in contexts])
        counts["executions"] += 1
    return counts
