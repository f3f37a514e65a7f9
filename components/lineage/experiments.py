"""Online experiments in ML Metadata: each decision an execution between the two model versions.

A decision (one line of the monitor's ``experiments.jsonl``, ``components/monitor/experiment.py``)
becomes a ``ct.OnlineExperiment`` execution named ``<model>/<candidate>@<start>`` with the outcome,
reason, likelihood ratio, improvement and both versions' evidence as properties; its INPUT events are
the model artifacts the two versions were deployed from (found through their deploy executions),
its OUTPUT a ``ct.ExperimentDecision`` artifact; both sit in a ``ct.OnlineExperiment`` context.
Recording is idempotent: a decision recorded twice is recorded once.
"""

from __future__ import annotations

from typing import Any, Optional

from components.lineage.recorder import _context, _type_id, get_value, set_value

EXECUTION_TYPE = "ct.OnlineExperiment"
DECISION_TYPE = "ct.ExperimentDecision"


def experiment_name(decision: dict[str, Any]) -> str:
    """The execution's name: model, candidate and start (one experiment of one candidate)."""
    return f"{decision['model_name']}/{decision['candidate_version']}@{decision['started_at']}"


def record_experiment(store, decision: dict[str, Any]) -> Optional[int]:
    """Records one decision; returns its execution id (None when it was recorded already)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from components.lineage.queries import deployments

    name = experiment_name(decision)
    if store.get_execution_by_type_and_name(EXECUTION_TYPE, name) is not None:
        return None
    context = _context(store, EXECUTION_TYPE, name, {"model_name": decision["model_name"]})
    statistics = decision.get("statistics") or {}
    execution = pb.Execution(type_id=_type_id(store, "execution", EXECUTION_TYPE), name=name,
                             last_known_state=pb.Execution.COMPLETE)
    for key in ("model_name", "candidate_version", "production_version", "outcome", "reason", "started_at",
                "looked_at", "traffic_percent"):
        set_value(execution.custom_properties, key, decision.get(key))
    for key in ("metric", "improvement", "likelihood_ratio", "p_value", "alpha", "min_effect"):
        set_value(execution.custom_properties, key, statistics.get(key))
    set_value(execution.custom_properties, "arms", statistics.get("arms"))
    set_value(execution.custom_properties, "guards", statistics.get("guards"))
    set_value(execution.custom_properties, "rules", decision.get("rules"))
    [execution_id] = store.put_executions([execution])
    decision_artifact = pb.Artifact(type_id=_type_id(store, "artifact", DECISION_TYPE),
                                    uri=f"experiment://{name}", state=pb.Artifact.LIVE)
    set_value(decision_artifact.custom_properties, "display_name", "decision")
    set_value(decision_artifact.custom_properties, "outcome", decision.get("outcome"))
    set_value(decision_artifact.custom_properties, "reason", decision.get("reason"))
    [artifact_id] = store.put_artifacts([decision_artifact])
    deployed = {d["version"]: d for d in deployments(store, decision["model_name"])}
    events = [pb.Event(artifact_id=artifact_id, execution_id=execution_id, type=pb.Event.OUTPUT)]
    for role in ("production", "candidate"):
        model = deployed.get(decision.get(f"{role}_version"))
        if model and model.get("model_artifact_id"):
            event = pb.Event(artifact_id=model["model_artifact_id"], execution_id=execution_id, type=pb.Event.INPUT)
            step = event.path.steps.add()
            step.key = role
            events.append(event)
    store.put_events(events)
    store.put_attributions_and_associations(
        [pb.Attribution(artifact_id=artifact_id, context_id=context.id)],
        [pb.Association(execution_id=execution_id, context_id=context.id)])
    return execution_id


def experiments(store, model_name: Optional[str] = None) -> list[dict[str, Any]]:
    """Every recorded decision (of one model), oldest first: versions, outcome, reason, statistics, inputs."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    found = []
    for execution in store.get_executions_by_type(EXECUTION_TYPE):
        props = {key: get_value(execution.custom_properties, key) for key in execution.custom_properties}
        if model_name and props.get("model_name") != model_name:
            continue
        inputs = {}
        for event in store.get_events_by_execution_ids([execution.id]):
            if event.type == pb.Event.INPUT:
                [artifact] = store.get_artifacts_by_id([event.artifact_id])
                inputs[event.path.steps[0].key if event.path.steps else str(artifact.id)] = artifact.uri
        found.append({**props, "model_uris": inputs})
    return sorted(found, key=lambda e: (e.get("looked_at") or "", e.get("started_at") or ""))
