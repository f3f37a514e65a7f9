"""Lineage in ML Metadata, on every backend the store supports here (SQLite, and MariaDB when available).

The queries are asked of two shapes of store: the local recorder's, and the KFP v2 backend's as
written by the backend stand-in (a stand-in for the Go driver/launcher, which cannot run here).
"""

import pytest
from lineage_runs import make_run, record_as_kfp_backend
from ml_metadata.proto import metadata_store_pb2 as pb

from components.lineage import graph, queries, recorder
from components.lineage.store import connect


@pytest.fixture
def store(metadata_uri):
    return connect(metadata_uri)


def _executions(store, run_id):
    context = store.get_context_by_type_and_name(recorder.CONTEXT_RUN, run_id)
    return {recorder.get_value(e.custom_properties, "task_name"): e
            for e in store.get_executions_by_context(context.id)}


def test_successful_run_is_recorded_with_kfp_type_names(store, tmp_path):
    run_dir = make_run(str(tmp_path), "run-1", auc=0.70, blessed=True, version="v0001")
    counts = recorder.record_run(store, run_dir)
    assert counts["executions"] == 6
    assert {t.name for t in store.get_context_types()} >= {"system.Pipeline", "system.PipelineRun"}
    assert {t.name for t in store.get_artifact_types()} >= {"system.Dataset", "system.Model", "system.Metrics"}
    executions = _executions(store, "run-1")
    assert all(e.last_known_state == pb.Execution.COMPLETE for e in executions.values())
    train = executions["train"]
    assert recorder.get_value(train.custom_properties, "image") == "localhost/kfp-ct/data:0.1.0"
    assert recorder.get_value(train.custom_properties, "duration_seconds") == 1.5
    run = store.get_context_by_type_and_name("system.PipelineRun", "run-1")
    assert recorder.get_value(run.custom_properties, "git_sha") == "1234567"
    assert recorder.get_value(run.custom_properties, "parameters")["max_iter"] == 100
    assert recorder.record_run(store, run_dir)["executions"] == 0  # idempotent


def test_failed_run_marks_the_failed_step_and_nothing_downstream(store, tmp_path):
    run_dir = make_run(str(tmp_path), "run-f", auc=0.7, blessed=True, fail_at="train")
    recorder.record_run(store, run_dir)
    executions = _executions(store, "run-f")
    assert set(executions) == {"extract", "train"}
    assert executions["train"].last_known_state == pb.Execution.FAILED
    outputs = [e for e in store.get_events_by_execution_ids([executions["train"].id]) if e.type == pb.Event.OUTPUT]
    assert outputs == []  # a failed step's outputs are not recorded as produced
    run = store.get_context_by_type_and_name("system.PipelineRun", "run-f")
    assert recorder.get_value(run.custom_properties, "status") == "FAILED"
    assert queries.latest_deployed_model(store) is None


def test_baseline_follows_blessed_not_blessed_blessed(store, tmp_path, record):
    assert queries.latest_deployed_model(store) is None
    record(store, make_run(str(tmp_path), "r1", 0.70, True, version="v0001", started=100))
    assert queries.latest_deployed_model(store)["version"] == "v0001"
    record(store, make_run(str(tmp_path), "r2", 0.55, False, started=200))
    assert queries.latest_deployed_model(store)["version"] == "v0001"
    record(store, make_run(str(tmp_path), "r3", 0.72, True, version="v0002", started=300, baseline_version="v0001"))
    latest = queries.latest_deployed_model(store)
    assert latest["version"] == "v0002" and latest["run_id"] == "r3" and latest["metrics"]["auc"] == 0.72
    record(store, make_run(str(tmp_path), "r4", 0.73, True, version="v0003", started=400, fail_at="deploy"))
    assert queries.latest_deployed_model(store)["version"] == "v0002"  # a failed deployment does not count


def test_provenance_runs_steps_diff_and_graph(store, tmp_path, record):
    record(store, make_run(str(tmp_path), "r1", 0.70, True, version="v0001", started=100))
    record(store, make_run(str(tmp_path), "r2", 0.74, True, version="v0002", started=200, baseline_version="v0001"))
    record(store, make_run(str(tmp_path), "r3", 0.80, True, version="v0003", started=300, fail_at="train"))
    latest = queries.latest_deployed_model(store)
    origin = queries.provenance(store, latest["model_uri"])
    assert origin["run_id"] == "r2" and origin["data_hash"] == "hash-r2"
    assert origin["spans"] == ["2013-01", "2013-04"] and origin["git_sha"] == "1234567"
    assert origin["trigger"] == "on_demand" and origin["parameters"]["test_span"] == "2013-04"
    assert origin["hyperparameters"] == {"max_iter": 100}
    assert origin["test_metrics"]["auc"] == 0.74 and origin["baseline"]["version"] == "v0001"
    assert origin["images"]["train"].endswith(":0.1.0")
    runs = queries.runs(store)
    assert [r["run_id"] for r in runs] == ["r1", "r2", "r3"]
    assert [r["status"] for r in runs] == ["COMPLETE", "COMPLETE", "FAILED"]
    assert runs[1]["trigger"] == "on_demand" and runs[1]["git_sha"] == "1234567"
    assert runs[1]["window"] == "2013-01:2013-03 -> 2013-04" and runs[1]["deployed"] == "v0002"
    assert runs[1]["candidate_auc"] == 0.74 and runs[1]["blessed"]
    steps = queries.steps(store, "r2")
    assert [s["step"] for s in steps][:2] == ["extract", "train"]
    assert all(s["state"] == "COMPLETE" and s["seconds"] is not None and s["started_at"] for s in steps)
    assert [s["state"] for s in queries.steps(store, "r3")] == ["COMPLETE", "FAILED"]
    difference = queries.diff(store, "v0001", "v0002")
    assert difference["test_metrics"]["auc"] == [0.70, 0.74]
    run_graph = graph.run_graph(store, "r2")
    assert {n["label"] for n in run_graph["nodes"].values() if n["kind"] == "execution"} == {
        "extract", "train", "resolve-baseline", "evaluate", "validate-model", "deploy"}
    html = graph.to_html(run_graph)
    assert "<svg" in html and "train (COMPLETE)" in html
    with pytest.raises(LookupError, match="v0009"):
        queries.diff(store, "v0001", "v0009")


def test_backend_stand_in_writes_what_the_kfp_backend_writes(store, tmp_path):
    """Record shapes from kubeflow/pipelines backend/src/v2/metadata/client.go (2.5.0-2.17.0)."""
    record_as_kfp_backend(store, make_run(str(tmp_path), "r1", 0.70, True, version="v0001"))
    run = store.get_context_by_type_and_name("system.PipelineRun", "r1")
    pipeline = store.get_context_by_type_and_name("system.Pipeline", "continuous-training")
    assert [c.id for c in store.get_parent_contexts_by_context(run.id)] == [pipeline.id]
    assert set(run.custom_properties) == {"namespace", "resource_name", "pipeline_root", "store_session_info"}
    root = store.get_execution_by_type_and_name("system.DAGExecution", "run/r1")
    assert recorder.get_value(root.custom_properties, "inputs")["trigger"] == "on_demand"
    train = next(e for e in store.get_executions_by_type("system.ContainerExecution")
                 if recorder.get_value(e.custom_properties, "task_name") == "train")
    assert not train.name and "run_id" not in train.custom_properties  # nothing of the local recorder's
    assert train.custom_properties["parent_dag_id"].int_value == root.id
    events = store.get_events_by_execution_ids([train.id])
    assert {(e.type, e.path.steps[0].key) for e in events} == {
        (pb.Event.INPUT, "train_data"), (pb.Event.OUTPUT, "model"), (pb.Event.OUTPUT, "train_metrics")}
    model = store.get_artifacts_by_id([e.artifact_id for e in events if e.path.steps[0].key == "model"])[0]
    assert model.custom_properties["display_name"].string_value == "model"
    assert "store_session_info" in model.custom_properties
    assert model.custom_properties["hyperparameters"].WhichOneof("value") == "struct_value"  # {"struct": ...}
    blessing = [a for a in store.get_artifacts() if a.custom_properties["display_name"].string_value == "blessing"][0]
    assert blessing.custom_properties["blessed"].int_value == 1  # bool -> int


def test_an_online_experiment_s_decision_is_an_execution_between_the_two_deployed_models(tmp_path, record):
    """Recorded from the monitor's decision line (as the loop hands it over), once, and read back with its evidence."""
    import json as json_module
    import os
    import subprocess
    import sys

    from components.lineage import experiments
    from components.paths import REPO_ROOT

    store_path = str(tmp_path / "mlmd.sqlite")
    store = connect(store_path)
    for index, version in enumerate(["v0001", "v0002"]):
        record(store, make_run(str(tmp_path / "runs"), f"r{index}", 0.7 + index / 100, True, version=version,
                               started=index * 10))
    decision = {"model_name": "flights-delay", "candidate_version": "v0002", "production_version": "v0001",
                "outcome": "promote", "reason": "the candidate's auc is better than production's by 0.05",
                "started_at": "2026-12-05T09:00:00Z", "looked_at": "2026-12-05T09:40:00Z", "traffic_percent": 50,
                "rules": {"alpha": 0.05}, "statistics": {
                    "metric": "auc", "improvement": 0.05, "likelihood_ratio": 31.5, "p_value": 0.032, "alpha": 0.05,
                    "min_effect": 0.03, "guards": [],
                    "arms": {"production": {"version": "v0001", "labelled_rows": 2500, "metric_value": 0.66},
                             "candidate": {"version": "v0002", "labelled_rows": 2480, "metric_value": 0.71}}}}
    decisions_file = tmp_path / "experiments.jsonl"
    decisions_file.write_text(json_module.dumps(decision) + "\n")
    command = [sys.executable, "-m", "components.lineage", "--store", store_path, "record-experiments",
               str(decisions_file)]
    for expected in ("recorded 1 of 1", "recorded 0 of 1"):  # the second time: recorded already
        answer = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONPATH": REPO_ROOT})
        assert expected in answer.stdout
    [found] = experiments.experiments(connect(store_path), "flights-delay")
    assert found["outcome"] == "promote" and found["likelihood_ratio"] == 31.5
    assert found["arms"]["candidate"]["labelled_rows"] == 2480
    by_version = {d["version"]: d["model_uri"] for d in queries.deployments(connect(store_path), "flights-delay")}
    assert found["model_uris"] == {"production": by_version["v0001"], "candidate": by_version["v0002"]}
    assert experiments.experiments(connect(store_path), "another-model") == []
