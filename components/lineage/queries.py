"""Questions answered from ML Metadata: production model, provenance, runs, steps, differences.

Two shapes of store are read alike: the local recorder's (``recorder.py``: executions named
``<run>/<task>`` with ``run_id``, times and the run's trigger and git sha as properties) and
the KFP v2 backend's (``kfp_backend.py``, as a cluster writes it: unnamed executions found
through their ``system.PipelineRun`` context, times from MLMD's own timestamps, the run's
parameters, trigger and git sha in the inputs of its root DAG execution ``run/<run id>``).
"""

from __future__ import annotations

from typing import Any, Optional

from components.lineage.kfp_backend import DAG_EXECUTION, ROOT_DAG_PREFIX
from components.lineage.recorder import CONTEXT_PIPELINE, CONTEXT_RUN, EXECUTION_TYPE, get_value

#: Run parameters that say why and from which code a run was made, rather than how it trains.
RUN_FACTS = ("trigger", "git_sha")


def _props(node) -> dict[str, Any]:
    return {key: get_value(node.custom_properties, key) for key in node.custom_properties}


def _times(execution) -> tuple[Optional[float], Optional[float], Optional[float]]:
    """(started, ended, seconds) of an execution: the recorder's properties, else MLMD's timestamps."""
    props = _props(execution)
    if props.get("started_at") is not None:
        return props.get("started_at"), props.get("ended_at"), props.get("duration_seconds")
    started = execution.create_time_since_epoch / 1000 if execution.create_time_since_epoch else None
    ended = execution.last_update_time_since_epoch / 1000 if execution.last_update_time_since_epoch else None
    return started, ended, round(ended - started, 3) if started and ended else None


def _type_id(store, kind: str, name: str) -> Optional[int]:
    from ml_metadata import errors

    try:
        return getattr(store, f"get_{kind}_type")(name).id
    except errors.NotFoundError:
        return None


def _run_context(store, execution):
    """The ``system.PipelineRun`` context an execution belongs to, or None."""
    run_type = _type_id(store, "context", CONTEXT_RUN)
    return next((c for c in store.get_contexts_by_execution(execution.id) if c.type_id == run_type), None)


def _run_id(store, execution) -> Optional[str]:
    props = _props(execution)
    if props.get("run_id"):
        return props["run_id"]
    context = _run_context(store, execution)
    return context.name if context else None


def task_executions(store, context) -> list:
    """The container executions of a run's context (not its DAG executions)."""
    type_id = _type_id(store, "execution", EXECUTION_TYPE)
    return [e for e in store.get_executions_by_context(context.id) if e.type_id == type_id]


def run_facts(store, context) -> dict[str, Any]:
    """A run's parameters, trigger, git sha, status and times, from either shape of store."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    props = _props(context)
    facts = {"parameters": props.get("parameters"), "trigger": props.get("trigger"),
             "git_sha": props.get("git_sha"), "pipeline_version": props.get("pipeline_version"),
             "status": props.get("status"), "started_at": props.get("started_at"), "ended_at": props.get("ended_at")}
    root = store.get_execution_by_type_and_name(DAG_EXECUTION, f"{ROOT_DAG_PREFIX}{context.name}")
    if root is not None:
        parameters = _props(root).get("inputs") or {}
        facts["parameters"] = facts["parameters"] or parameters
        for key in RUN_FACTS:
            facts[key] = facts[key] or parameters.get(key) or None
        started, ended, _ = _times(root)
        facts["started_at"] = facts["started_at"] or started
        facts["ended_at"] = facts["ended_at"] or ended
        if facts["status"] is None:
            states = {e.last_known_state for e in task_executions(store, context)}
            facts["status"] = ("FAILED" if pb.Execution.FAILED in states
                               else "RUNNING" if pb.Execution.RUNNING in states else "COMPLETE")
    return facts


def _state(execution) -> str:
    from ml_metadata.proto import metadata_store_pb2 as pb

    return pb.Execution.State.Name(execution.last_known_state)


def _events(store, execution_id: int) -> list:
    return store.get_events_by_execution_ids([execution_id])


def _artifacts_of(store, execution_id: int, kind) -> dict[str, Any]:
    """Artifacts an execution consumed (kind INPUT) or produced (OUTPUT), by their key."""
    events = [e for e in _events(store, execution_id) if e.type == kind]
    by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])} if events else {}
    return {e.path.steps[0].key: by_id[e.artifact_id] for e in events if e.path.steps}


def _producer(store, artifact_id: int):
    from ml_metadata.proto import metadata_store_pb2 as pb

    events = [e for e in store.get_events_by_artifact_ids([artifact_id]) if e.type == pb.Event.OUTPUT]
    executions = store.get_executions_by_id([e.execution_id for e in events]) if events else []
    real = [x for x in executions if x.last_known_state != pb.Execution.CACHED]
    return (real or executions or [None])[0]


def _run_execution(store, run_id: str, task_name: str):
    """A run's execution of a task: by the recorder's name, else through the run's context."""
    execution = store.get_execution_by_type_and_name(EXECUTION_TYPE, f"{run_id}/{task_name}")
    if execution is not None:
        return execution
    context = store.get_context_by_type_and_name(CONTEXT_RUN, run_id)
    found = [e for e in task_executions(store, context) if _props(e).get("task_name") == task_name] if context else []
    return found[-1] if found else None


def _pipeline_name(store, execution) -> Optional[str]:
    """The name of the ``system.Pipeline`` context above an execution's run (KFP: the pipeline's name), or None."""
    pipeline_type = _type_id(store, "context", CONTEXT_PIPELINE)
    # The KFP driver puts an execution in both contexts (and the run under the pipeline); look at both.
    contexts = store.get_contexts_by_execution(execution.id)
    run = _run_context(store, execution)
    if run is not None:
        contexts = [*contexts, *store.get_parent_contexts_by_context(run.id)]
    found = [c for c in contexts if c.type_id == pipeline_type]
    return found[0].name if found else None


def deployments(store, model_name: Optional[str] = None, namespace: Optional[str] = None,
                pipeline_name: Optional[str] = None) -> list[dict[str, Any]]:
    """Completed deployments, oldest first: version, model folder, model URI, run and metrics.

    One ML Metadata store serves a whole cluster (every profile's runs): ``namespace`` keeps the
    deployments into that namespace (the deployment artifact's ``namespace``) and ``pipeline_name``
    those of runs of that pipeline (the run's ``system.Pipeline`` context, as KFP's driver names it:
    backend/src/v2/metadata/client.go ``GetPipeline``). A record without the property (written before
    deployments recorded their namespace) is not excluded by it.
    """
    from ml_metadata.proto import metadata_store_pb2 as pb

    found = []
    for execution in store.get_executions_by_type(EXECUTION_TYPE):
        props = _props(execution)
        if props.get("task_name") != "deploy" or execution.last_known_state != pb.Execution.COMPLETE:
            continue
        outputs = _artifacts_of(store, execution.id, pb.Event.OUTPUT)
        inputs = _artifacts_of(store, execution.id, pb.Event.INPUT)
        deployment = _props(outputs["deployment"]) if "deployment" in outputs else {}
        if not deployment.get("deployed"):
            continue
        if model_name and deployment.get("model_name", model_name) != model_name:
            continue
        if namespace is not None and deployment.get("namespace", namespace) != namespace:
            continue
        if pipeline_name is not None and _pipeline_name(store, execution) not in (None, pipeline_name):
            continue
        run_id = _run_id(store, execution)
        found.append({
            "version": deployment.get("version"),
            "model_dir": deployment.get("model_dir"),
            "model_uri": inputs["model"].uri if "model" in inputs else None,
            "model_artifact_id": inputs["model"].id if "model" in inputs else None,
            "run_id": run_id,
            "deployed_at": _times(execution)[1],
            # A canary or an experiment's candidate: production only once promoted (the registry says).
            "canary": bool(deployment.get("canary")),
            "metrics": _evaluation_metrics(store, run_id),
            "execution_id": execution.id,
        })
    return sorted(found, key=lambda d: (d["deployed_at"] or 0, d["execution_id"]))


def _evaluation_metrics(store, run_id: Optional[str]) -> dict[str, Any]:
    from ml_metadata.proto import metadata_store_pb2 as pb

    execution = _run_execution(store, run_id, "evaluate") if run_id else None
    if execution is None:
        return {}
    outputs = _artifacts_of(store, execution.id, pb.Event.OUTPUT)
    return _props(outputs["metrics"]) if "metrics" in outputs else {}


def latest_deployed_model(store, model_name: Optional[str] = None, namespace: Optional[str] = None,
                          pipeline_name: Optional[str] = None) -> Optional[dict[str, Any]]:
    """The latest blessed and deployed model (TFX's latest-blessed-model semantics), or None.

    ``deploy`` refuses unblessed models, so every completed deployment is of a blessed one. The
    scope (``namespace``, ``pipeline_name``) is ``deployments``'.
    """
    found = deployments(store, model_name, namespace, pipeline_name)
    return found[-1] if found else None


def provenance(store, model_uri: str, deployed_by: Optional[str] = None) -> dict[str, Any]:
    """What produced a model: run, spans, data hash, features, parameters, code, images, metrics, baseline beaten.

    Args:
        store: The MLMD store.
        model_uri: The model artifact's URI.
        deployed_by: The run that deployed it: its materialization (feature view, time range) is the
            one serving started with (default: the run that trained it).
    """
    from ml_metadata.proto import metadata_store_pb2 as pb

    models = store.get_artifacts_by_uri(model_uri)
    if not models:
        raise LookupError(f"no artifact with URI {model_uri} in the metadata store")
    train = _producer(store, models[0].id)
    if train is None:
        raise LookupError(f"the metadata store knows no execution that produced {model_uri}")
    run_id = _run_id(store, train)
    if run_id is None:
        raise LookupError(f"the execution that produced {model_uri} belongs to no run")
    run = store.get_context_by_type_and_name(CONTEXT_RUN, run_id)
    run_props = run_facts(store, run) if run else {}
    result: dict[str, Any] = {
        "model_uri": model_uri,
        "run_id": run_id,
        "trigger": run_props.get("trigger"),
        "git_sha": run_props.get("git_sha"),
        "pipeline_version": run_props.get("pipeline_version"),
        "parameters": run_props.get("parameters"),
        "hyperparameters": _props(models[0]).get("hyperparameters"),
        "images": {},
    }
    for execution in task_executions(store, run) if run else []:
        props = _props(execution)
        result["images"][props.get("task_name")] = props.get("image")
    extract = _run_execution(store, run_id, "extract")
    if extract is not None:
        dataset = _artifacts_of(store, extract.id, pb.Event.OUTPUT).get("dataset")
        if dataset is not None:
            data = _props(dataset)
            result.update(spans=data.get("spans"), rows_per_span=data.get("rows_per_span"),
                          data_hash=data.get("data_hash"), dataset_uri=dataset.uri)
    # The feature store: the feature view joined for training, and what that run materialized for serving.
    joined = _run_execution(store, run_id, "join-features")
    if joined is not None:
        data = _props(_artifacts_of(store, joined.id, pb.Event.OUTPUT).get("joined") or pb.Artifact())
        result["features"] = {key: data.get(key) for key in ("feature_view", "features", "offline_uri",
                                                              "rows_without_features")}
    materialized = _run_execution(store, deployed_by or run_id, "materialize")
    if materialized is not None:
        output = _artifacts_of(store, materialized.id, pb.Event.OUTPUT).get("features")
        result["materialization"] = {**_props(output), "uri": output.uri} if output is not None else None
    evaluate = _run_execution(store, run_id, "evaluate")
    if evaluate is not None:
        outputs = _artifacts_of(store, evaluate.id, pb.Event.OUTPUT)
        result["test_metrics"] = _props(outputs["metrics"]) if "metrics" in outputs else {}
        evaluation = _props(outputs["evaluation"]) if "evaluation" in outputs else {}
        baseline = _artifacts_of(store, evaluate.id, pb.Event.INPUT).get("baseline")
        result["baseline"] = {"version": _props(baseline).get("version") if baseline else None,
                              "auc_on_same_test_span": evaluation.get("baseline_auc")}
    result["train_metrics"] = {}
    for key, artifact in _artifacts_of(store, train.id, pb.Event.OUTPUT).items():
        if key == "train_metrics":
            result["train_metrics"] = _props(artifact)
    validate = _run_execution(store, run_id, "validate-model")
    if validate is not None:
        blessing = _artifacts_of(store, validate.id, pb.Event.OUTPUT).get("blessing")
        result["blessing"] = _props(blessing) if blessing else None
    return result


def runs(store) -> list[dict[str, Any]]:
    """Every recorded run with its outcome: status, trigger, window, candidate AUC, blessing, deployment."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    result = []
    for context in store.get_contexts_by_type(CONTEXT_RUN):
        props = run_facts(store, context)
        steps = {(_props(e).get("task_name")): e for e in task_executions(store, context)}
        entry = {"run_id": context.name, "status": props.get("status"), "trigger": props.get("trigger"),
                 "started_at": props.get("started_at"), "git_sha": props.get("git_sha"),
                 "window": f"{(props.get('parameters') or {}).get('train_spans')} -> "
                           f"{(props.get('parameters') or {}).get('test_span')}",
                 "candidate_auc": None, "blessed": None, "deployed": None}
        if "evaluate" in steps:
            metrics = _artifacts_of(store, steps["evaluate"].id, pb.Event.OUTPUT).get("metrics")
            entry["candidate_auc"] = _props(metrics).get("auc") if metrics else None
        if "validate-model" in steps:
            blessing = _artifacts_of(store, steps["validate-model"].id, pb.Event.OUTPUT).get("blessing")
            entry["blessed"] = _props(blessing).get("blessed") if blessing else None
        if "deploy" in steps:
            deployment = _artifacts_of(store, steps["deploy"].id, pb.Event.OUTPUT).get("deployment")
            entry["deployed"] = _props(deployment).get("version") if deployment else None
        result.append(entry)
    return sorted(result, key=lambda r: r["started_at"] or 0)


def steps(store, run_id: str) -> list[dict[str, Any]]:
    """A run's steps in order, with state and duration."""
    context = store.get_context_by_type_and_name(CONTEXT_RUN, run_id)
    if context is None:
        raise LookupError(f"no run {run_id} in the metadata store")
    result = []
    for execution in task_executions(store, context):
        props = _props(execution)
        started, _, seconds = _times(execution)
        result.append({"step": props.get("task_name"), "state": _state(execution),
                       "seconds": seconds, "image": props.get("image"), "started_at": started})
    return sorted(result, key=lambda s: s["started_at"] or 0)


def diff(store, version_a: str, version_b: str, model_name: Optional[str] = None) -> dict[str, Any]:
    """Metrics and parameters of two deployed versions, side by side, with what differs."""
    by_version = {d["version"]: d for d in deployments(store, model_name)}
    for version in (version_a, version_b):
        if version not in by_version:
            raise LookupError(f"no deployed version {version}; known: {', '.join(sorted(by_version)) or 'none'}")
    a = provenance(store, by_version[version_a]["model_uri"])
    b = provenance(store, by_version[version_b]["model_uri"])

    def changed(left: dict, right: dict) -> dict[str, Any]:
        keys = sorted(set(left or {}) | set(right or {}))
        return {k: [(left or {}).get(k), (right or {}).get(k)] for k in keys
                if (left or {}).get(k) != (right or {}).get(k)}

    return {"versions": [version_a, version_b],
            "runs": [a["run_id"], b["run_id"]],
            "test_metrics": changed(a.get("test_metrics"), b.get("test_metrics")),
            "parameters": changed(a.get("parameters"), b.get("parameters")),
            "spans": [a.get("spans"), b.get("spans")],
            "git_sha": [a.get("git_sha"), b.get("git_sha")]}
