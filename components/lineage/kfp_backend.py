"""A stand-in for the KFP v2 backend's ML Metadata writes, for local runs in backend-contract mode.

On a Kubeflow cluster the KFP driver and launcher (Go) write every run into MLMD, and the
driver hands artifact metadata to the next task *as MLMD stored it*. ``kfp.local`` does
neither. This module does what they do, rule by rule, so that a local run meets the same
contract. Followed (kubeflow/pipelines, tag 2.5.0 as shipped by Kubeflow 1.10; the rules
used here are unchanged through 2.17.0):

- ``backend/src/v2/metadata/converter.go``: ``StructValueToMLMDValue`` (string -> string,
  number -> double, bool -> int 0/1, list -> struct ``{"list": [...]}``, struct -> struct
  ``{"struct": {...}}``, null -> error "unknown/unsupported value type"), ``toMLMDArtifact``
  and ``toRuntimeArtifact`` (what the driver gives downstream: name = the MLMD id, metadata
  = properties + custom properties, int and double -> number).
- ``backend/src/v2/metadata/client.go``: ``GetPipeline`` (contexts ``system.Pipeline`` and
  ``system.PipelineRun`` with namespace, resource_name, pipeline_root, store_session_info;
  the run's parent is the pipeline), ``CreateExecution`` (``system.ContainerExecution`` with
  display_name, task_name, parent_dag_id, pod_name, pod_uid, namespace, image, inputs;
  INPUT events keyed by input name), ``RecordArtifact`` (type from the schema title, LIVE,
  display_name and store_session_info added), ``PublishExecution`` (outputs, state, OUTPUT
  events keyed by output name, associated with both contexts).
- ``backend/src/v2/driver/driver.go``: ``RootDAG`` (``system.DAGExecution`` named
  ``run/<run id>`` with the run's parameters as inputs), cache hits published as CACHED
  with ``cached_execution_id`` and the cached outputs.
- ``backend/src/v2/component/launcher_v2.go``: ``collectOutputParameters``,
  ``uploadOutputArtifacts``, and a FAILED publish (no outputs) when the program fails or
  its outputs cannot be recorded.

Not emulated: executions of nested DAGs (conditions, sub-pipelines: every task's
``parent_dag_id`` is the root DAG here), pods, the object store upload, the cache server.

Run as ``python -m components.lineage.kfp_backend --store URI``: one JSON request a line
on stdin, one JSON answer a line on stdout (the local runner drives it, see
``pipelines/local/backend_contract.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional

PIPELINE_CONTEXT = "system.Pipeline"
RUN_CONTEXT = "system.PipelineRun"
CONTAINER_EXECUTION = "system.ContainerExecution"
DAG_EXECUTION = "system.DAGExecution"
ROOT_DAG_PREFIX = "run/"


class BackendError(Exception):
    """What the KFP backend would fail the task with (its error text)."""


def struct_value_to_mlmd_value(value):
    """``StructValueToMLMDValue`` (converter.go): one metadata value as MLMD stores it.

    Raises:
        BackendError: The value is null: the backend has no case for it ("TODO: support null").
    """
    from google.protobuf import struct_pb2
    from ml_metadata.proto import metadata_store_pb2 as pb

    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return pb.Value(string_value=value.string_value)
    if kind == "number_value":
        return pb.Value(double_value=value.number_value)
    if kind == "bool_value":
        return pb.Value(int_value=1 if value.bool_value else 0)
    if kind == "list_value":
        wrapped = struct_pb2.Struct()
        wrapped.fields["list"].list_value.CopyFrom(value.list_value)
        return pb.Value(struct_value=wrapped)
    if kind == "struct_value":
        wrapped = struct_pb2.Struct()
        wrapped.fields["struct"].struct_value.CopyFrom(value.struct_value)
        return pb.Value(struct_value=wrapped)
    go_type = {"null_value": "*structpb.Value_NullValue"}.get(kind, "<nil>")
    raise BackendError(f"unknown/unsupported value type {go_type}")


def _struct(values: dict[str, Any]):
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(values or {})
    return struct


def to_mlmd_artifact(runtime_artifact: dict[str, Any]):
    """``toMLMDArtifact`` (converter.go): URI and metadata as custom properties.

    Raises:
        BackendError: A metadata value cannot be converted.
    """
    from ml_metadata.proto import metadata_store_pb2 as pb

    artifact = pb.Artifact(uri=runtime_artifact.get("uri", ""))
    metadata = _struct(runtime_artifact.get("metadata") or {})
    for key, value in metadata.fields.items():
        if key == "_kfp_workspace":
            continue
        try:
            artifact.custom_properties[key].CopyFrom(struct_value_to_mlmd_value(value))
        except BackendError as error:
            raise BackendError(f"failed to convert RuntimeArtifact to MLMD artifact: {error}") from None
    return artifact


def to_runtime_artifact(artifact) -> dict[str, Any]:
    """``toRuntimeArtifact`` (converter.go): the artifact as the driver hands it to the next task."""
    from google.protobuf import json_format

    metadata: dict[str, Any] = {}
    for properties in (artifact.properties, artifact.custom_properties):
        for key, value in properties.items():
            kind = value.WhichOneof("value")
            if kind == "string_value":
                metadata[key] = value.string_value
            elif kind == "double_value":
                metadata[key] = value.double_value
            elif kind == "int_value":
                metadata[key] = float(value.int_value)
            elif kind == "struct_value":
                metadata[key] = json_format.MessageToDict(value.struct_value)
            else:
                raise BackendError(f"failed to convert MLMD artifact to RuntimeArtifact: "
                                   f"unknown property type in MLMD artifact: {kind}")
    return {"name": str(artifact.id), "uri": artifact.uri, "metadata": metadata}


def _type_id(store, kind: str, name: str) -> int:
    from ml_metadata.proto import metadata_store_pb2 as pb

    message = {"context": pb.ContextType, "execution": pb.ExecutionType, "artifact": pb.ArtifactType}[kind](name=name)
    return getattr(store, f"put_{kind}_type")(message)


def _string(value: str):
    from ml_metadata.proto import metadata_store_pb2 as pb

    return pb.Value(string_value=value)


def _int(value: int):
    from ml_metadata.proto import metadata_store_pb2 as pb

    return pb.Value(int_value=value)


def _struct_value(values: dict[str, Any]):
    from ml_metadata.proto import metadata_store_pb2 as pb

    return pb.Value(struct_value=_struct(values))


class BackendMetadataClient:
    """The KFP backend's MLMD client (client.go), on any MLMD store."""

    def __init__(self, store, namespace: str = "kubeflow-user-example-com"):
        """Args: an ``ml_metadata`` MetadataStore; the namespace recorded on pods and runs."""
        self.store = store
        self.namespace = namespace
        self.contexts: list = []
        self.root_dag_id: Optional[int] = None
        self.store_session_info = json.dumps({"Provider": "minio", "Params": {}})
        self._type_ids: dict[tuple[str, str], int] = {}

    def _type_id(self, kind: str, name: str) -> int:
        """The id of an MLMD type, registered once per client (the Go client caches them too)."""
        if (kind, name) not in self._type_ids:
            self._type_ids[(kind, name)] = _type_id(self.store, kind, name)
        return self._type_ids[(kind, name)]

    def _context(self, type_name: str, name: str, properties: dict[str, Any]):
        from ml_metadata.proto import metadata_store_pb2 as pb

        context = self.store.get_context_by_type_and_name(type_name, name)
        if context is not None:
            return context
        context = pb.Context(type_id=self._type_id("context", type_name), name=name)
        for key, value in properties.items():
            context.custom_properties[key].CopyFrom(_string(value))
        [context.id] = self.store.put_contexts([context])
        return context

    def root_dag(self, pipeline_name: str, run_id: str, pipeline_root: str, parameters: dict[str, Any]) -> int:
        """``GetPipeline`` + ``RootDAG``: the run's contexts and its root DAG execution."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        pipeline = self._context(PIPELINE_CONTEXT, pipeline_name, {})
        session = self.store_session_info
        run = self._context(RUN_CONTEXT, run_id, {
            "namespace": self.namespace, "resource_name": "run-resource",
            "pipeline_root": f"{pipeline_root.rstrip('/')}/{pipeline_name}/{run_id}",
            "store_session_info": session})
        if not self.store.get_parent_contexts_by_context(run.id):
            self.store.put_parent_contexts([pb.ParentContext(child_id=run.id, parent_id=pipeline.id)])
        self.contexts = [pipeline, run]
        execution = pb.Execution(type_id=self._type_id("execution", DAG_EXECUTION),
                                 name=f"{ROOT_DAG_PREFIX}{run_id}", last_known_state=pb.Execution.RUNNING)
        execution.custom_properties["display_name"].CopyFrom(_string(""))
        execution.custom_properties["task_name"].CopyFrom(_string(""))
        execution.custom_properties["inputs"].CopyFrom(_struct_value(parameters))
        self.root_dag_id, _, _ = self.store.put_execution(execution, [], self.contexts)
        return self.root_dag_id

    def _input_artifact_id(self, artifact: dict[str, Any]) -> Optional[int]:
        name = str(artifact.get("name", ""))
        if name.isdigit() and self.store.get_artifacts_by_id([int(name)]):
            return int(name)
        found = self.store.get_artifacts_by_uri(artifact.get("uri", ""))
        return found[-1].id if found else None

    def create_execution(self, task_name: str, image: str, executor_input: dict[str, Any],
                         cached_execution_id: Optional[int] = None) -> int:
        """The driver's ``CreateExecution`` for a container task: RUNNING, inputs and INPUT events."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        execution = pb.Execution(type_id=self._type_id("execution", CONTAINER_EXECUTION),
                                 last_known_state=pb.Execution.RUNNING)
        properties = execution.custom_properties
        properties["display_name"].CopyFrom(_string(task_name))
        properties["task_name"].CopyFrom(_string(task_name))
        properties["parent_dag_id"].CopyFrom(_int(self.root_dag_id or 0))
        for key, value in (("pod_name", ""), ("pod_uid", ""), ("namespace", self.namespace), ("image", image)):
            properties[key].CopyFrom(_string(value))
        if cached_execution_id:
            properties["cached_execution_id"].CopyFrom(_string(str(cached_execution_id)))
        properties["inputs"].CopyFrom(_struct_value(executor_input.get("inputs", {}).get("parameterValues", {})))
        events = []
        for name, entry in executor_input.get("inputs", {}).get("artifacts", {}).items():
            for artifact in entry.get("artifacts", []):
                artifact_id = self._input_artifact_id(artifact)
                if artifact_id is None:
                    continue
                event = pb.Event(type=pb.Event.INPUT, artifact_id=artifact_id)
                event.path.steps.add().key = name
                [stored] = self.store.get_artifacts_by_id([artifact_id])
                events.append((stored, event))
        execution_id, _, _ = self.store.put_execution(execution, events, self.contexts)
        return execution_id

    def record_artifact(self, output_name: str, schema_title: str, runtime_artifact: dict[str, Any]):
        """``RecordArtifact``: the output artifact as MLMD keeps it (LIVE, display_name, store_session_info)."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        artifact = to_mlmd_artifact(runtime_artifact)
        artifact.type_id = self._type_id("artifact", schema_title or "system.Artifact")
        artifact.state = pb.Artifact.LIVE
        if "display_name" not in artifact.custom_properties:
            artifact.custom_properties["display_name"].CopyFrom(_string(output_name))
        if "store_session_info" not in artifact.custom_properties:
            artifact.custom_properties["store_session_info"].CopyFrom(_string(self.store_session_info))
        [artifact.id] = self.store.put_artifacts([artifact])
        return artifact

    def publish_execution(self, execution_id: int, state: str, output_parameters: Optional[dict[str, Any]],
                          output_artifacts: list[tuple[str, Any]]) -> None:
        """``PublishExecution``: outputs, final state, OUTPUT events, both contexts."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        [execution] = self.store.get_executions_by_id([execution_id])
        execution.last_known_state = pb.Execution.State.Value(state)
        if output_parameters is not None:
            execution.custom_properties["outputs"].CopyFrom(_struct_value(output_parameters))
        pairs = []
        for name, artifact in output_artifacts:
            event = pb.Event(type=pb.Event.OUTPUT, artifact_id=artifact.id)
            event.path.steps.add().key = name
            pairs.append((artifact, event))
        self.store.put_execution(execution, pairs, self.contexts)

    def launch(self, execution_id: int, executor_input: dict[str, Any], executor_output: Optional[dict[str, Any]],
               succeeded: bool) -> dict[str, Any]:
        """What the launcher does once the program has exited: record outputs, publish, hand them on.

        Returns:
            ``{"ok": True, "executor_output": {...}}`` with the artifacts as the driver resolves
            them for downstream tasks, or ``{"ok": False, "error": ...}`` (execution FAILED).
        """
        if not succeeded:
            self.publish_execution(execution_id, "FAILED", None, [])
            return {"ok": False, "error": None}
        outputs = executor_input.get("outputs", {})
        executor_output = executor_output or {}
        try:
            parameters = dict(executor_output.get("parameterValues") or {})
            for name, spec in outputs.get("parameters", {}).items():
                if name not in parameters:
                    parameters[name] = _read_parameter_file(name, spec.get("outputFile", ""))
            recorded = []
            for name, entry in outputs.get("artifacts", {}).items():
                declared = dict(entry["artifacts"][0])
                written = (executor_output.get("artifacts", {}).get(name, {}).get("artifacts") or [{}])[0]
                merged = {"uri": written.get("uri") or declared.get("uri", ""),
                          "metadata": {**(declared.get("metadata") or {}), **(written.get("metadata") or {})}}
                try:
                    artifact = self.record_artifact(name, declared.get("type", {}).get("schemaTitle", ""), merged)
                except BackendError as error:
                    raise BackendError(f"unable to produce MLMD artifact for output {name!r}: {error}") from None
                recorded.append((name, artifact))
        except BackendError as error:
            self.publish_execution(execution_id, "FAILED", None, [])
            return {"ok": False, "error": f"failed to execute component: {error}"}
        self.publish_execution(execution_id, "COMPLETE", parameters, recorded)
        return {"ok": True, "executor_output": {
            "artifacts": {name: {"artifacts": [to_runtime_artifact(artifact)]} for name, artifact in recorded},
            "parameterValues": parameters}}

    def cached(self, task_name: str, image: str, executor_input: dict[str, Any],
               cached_outputs: dict[str, Any]) -> int:
        """A cache hit as the driver publishes it: CACHED, ``cached_execution_id``, the cached outputs."""
        artifacts = []
        for name, entry in cached_outputs.get("artifacts", {}).items():
            for artifact in entry.get("artifacts", []):
                artifact_id = self._input_artifact_id(artifact)
                if artifact_id is not None:
                    artifacts.append((name, self.store.get_artifacts_by_id([artifact_id])[0]))
        producer = None
        if artifacts:
            from ml_metadata.proto import metadata_store_pb2 as pb

            events = self.store.get_events_by_artifact_ids([artifacts[0][1].id])
            producer = next((e.execution_id for e in events if e.type == pb.Event.OUTPUT), None)
        execution_id = self.create_execution(task_name, image, executor_input, cached_execution_id=producer)
        self.publish_execution(execution_id, "CACHED", cached_outputs.get("parameterValues") or {}, artifacts)
        return execution_id

    def finish(self, succeeded: bool) -> None:
        """Sets the root DAG's final state (on a cluster the DAG driver's state update does this)."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        if self.root_dag_id is None:
            return
        [execution] = self.store.get_executions_by_id([self.root_dag_id])
        execution.last_known_state = pb.Execution.COMPLETE if succeeded else pb.Execution.FAILED
        self.store.put_executions([execution])


def _read_parameter_file(name: str, path: str) -> Any:
    """``collectOutputParameters``: an output parameter the program wrote to its file only."""
    if not path or not os.path.exists(path):
        raise BackendError(f"failed to read output parameter name={name!r} path={path!r}: no such file")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except ValueError:
        return text


def serve(store_uri: str, stdin=None, stdout=None) -> None:
    """Answers the local runner's requests, one JSON object a line, until ``finish`` or end of input."""
    from components.lineage.store import connect

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    client = BackendMetadataClient(connect(store_uri))
    for line in stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request.pop("op")
        try:
            if op == "root_dag":
                answer: dict[str, Any] = {"ok": True, "execution_id": client.root_dag(**request)}
            elif op == "create_execution":
                answer = {"ok": True, "execution_id": client.create_execution(**request)}
            elif op == "launch":
                answer = client.launch(**request)
            elif op == "cached":
                answer = {"ok": True, "execution_id": client.cached(**request)}
            elif op == "finish":
                client.finish(**request)
                answer = {"ok": True}
            else:
                answer = {"ok": False, "error": f"unknown request {op!r}"}
        except Exception as error:  # noqa: BLE001 - answered to the runner, which fails the task with it
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        stdout.write(json.dumps(answer) + "\n")
        stdout.flush()
        if op == "finish":
            return


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: serve requests for one run against the store."""
    parser = argparse.ArgumentParser(prog="python -m components.lineage.kfp_backend", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="MLMD store: SQLite path, mysql://..., grpc://host:port")
    args = parser.parse_args(argv)
    serve(args.store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
