"""Builds run folders the way the local runner leaves them, for lineage tests."""

import json
import os
import time


def _artifact(uri, title, metadata=None):
    return {"artifacts": [{"name": os.path.basename(uri), "uri": uri, "type": {"schemaTitle": title},
                           "metadata": metadata or {}}]}


def write_task(run_dir, run_id, task, inputs, outputs, exit_code=0, params=None, started=None):
    """One task folder: executor input (typed artifacts), executor output, timing."""
    folder = os.path.join(run_dir, run_id, task)
    os.makedirs(folder, exist_ok=True)
    out_artifacts = {}
    for name, (title, metadata) in outputs.items():
        uri = os.path.join(folder, name)
        with open(uri, "w") as handle:
            json.dump(metadata, handle)
        out_artifacts[name] = _artifact(uri, title, metadata)
    executor_input = {"inputs": {"parameterValues": params or {},
                                 "artifacts": {k: _artifact(*v) for k, v in inputs.items()}},
                      "outputs": {"artifacts": {k: {"artifacts": [{"name": k, "uri": v["artifacts"][0]["uri"],
                                                                    "type": v["artifacts"][0]["type"]}]}
                                                for k, v in out_artifacts.items()},
                                  "outputFile": os.path.join(folder, "executor_output.json")}}
    with open(os.path.join(folder, "executor_input.json"), "w") as handle:
        json.dump(executor_input, handle)
    with open(os.path.join(folder, "executor_output.json"), "w") as handle:
        json.dump({"artifacts": out_artifacts}, handle)
    start = time.time() if started is None else started
    with open(os.path.join(folder, "timing.json"), "w") as handle:
        json.dump({"runtime": "data", "image": "localhost/kfp-ct/data:0.1.0", "started": start,
                   "ended": start + 1.5, "seconds": 1.5, "exit_code": exit_code, "cached": False}, handle)
    return {k: (v["artifacts"][0]["uri"], v["artifacts"][0]["type"]["schemaTitle"],
                v["artifacts"][0]["metadata"]) for k, v in out_artifacts.items()}


def make_run(root, run_id, auc, blessed, deploy=True, fail_at=None, version=None, baseline_version=None,
             started=0.0, namespace=None, pipeline_name="continuous-training"):
    """A CT run folder: extract, train, resolve-baseline, evaluate, validate-model and (if blessed) deploy.

    ``fail_at`` names a task that fails; nothing after it runs.
    """
    run_dir = os.path.join(root, run_id)
    os.makedirs(run_dir, exist_ok=True)
    status = "FAILED" if fail_at else "COMPLETE"
    with open(os.path.join(run_dir, "run.json"), "w") as handle:
        json.dump({"run_id": run_id, "pipeline_name": pipeline_name, "pipeline_version": "abc",
                   "git_sha": "1234567", "trigger": "on_demand", "status": status,
                   "parameters": {"train_spans": "2013-01:2013-03", "test_span": "2013-04", "max_iter": 100},
                   "started": started}, handle)
    t = started
    data = write_task(run_dir, run_id, "extract", {}, {"dataset": ("system.Dataset", {
        "spans": ["2013-01", "2013-04"], "data_hash": f"hash-{run_id}"})},
        exit_code=1 if fail_at == "extract" else 0, started=t)
    if fail_at == "extract":
        return run_dir
    model = write_task(run_dir, run_id, "train", {"train_data": data["dataset"]},
                       {"model": ("system.Model", {"hyperparameters": {"max_iter": 100}}),
                        "train_metrics": ("system.Metrics", {"train_auc": auc + 0.1})},
                       exit_code=1 if fail_at == "train" else 0, started=t + 2)
    if fail_at == "train":
        return run_dir
    baseline = write_task(run_dir, run_id, "resolve-baseline", {}, {"baseline": (
        "system.Model", {"version": baseline_version} if baseline_version else {})}, started=t + 3)
    evaluation = write_task(run_dir, run_id, "evaluate", {"model": model["model"], "baseline": baseline["baseline"]},
                            {"metrics": ("system.Metrics", {"auc": auc}),
                             "evaluation": ("system.Artifact", {"candidate_auc": auc})}, started=t + 4)
    blessing = write_task(run_dir, run_id, "validate-model", {"evaluation": evaluation["evaluation"]},
                          {"blessing": ("system.Artifact", {"blessed": blessed})}, started=t + 6)
    if blessed and deploy:
        write_task(run_dir, run_id, "deploy", {"model": model["model"], "blessing": blessing["blessing"]},
                   {"deployment": ("system.Artifact", {"deployed": True, "version": version,
                                                       "model_name": "flights-delay",
                                                       "model_dir": f"/registry/{version}",
                                                       **({"namespace": namespace} if namespace else {})})},
                   exit_code=1 if fail_at == "deploy" else 0, started=t + 8)
    return run_dir


def record_as_kfp_backend(store, run_dir):
    """Records a run folder the way the KFP v2 backend would have written it during the run.

    Uses the backend stand-in (components/lineage/kfp_backend.py): root DAG with the run's
    parameters (trigger and git sha among them), then per task the driver's execution and the
    launcher's publish. No local-recorder property is written.
    """
    from components.lineage.kfp_backend import BackendMetadataClient
    from components.run_folder import task_folders

    with open(os.path.join(run_dir, "run.json")) as handle:
        info = json.load(handle)
    client = BackendMetadataClient(store)
    client.root_dag(info["pipeline_name"], info["run_id"], "/pipeline-root",
                    {**info["parameters"], "trigger": info["trigger"], "git_sha": info["git_sha"]})
    tasks = []
    for name, folder in task_folders(run_dir).items():
        with open(os.path.join(folder, "timing.json")) as handle:
            tasks.append((json.load(handle), name, folder))
    for timing, name, folder in sorted(tasks, key=lambda t: t[0]["started"]):
        with open(os.path.join(folder, "executor_input.json")) as handle:
            executor_input = json.load(handle)
        with open(os.path.join(folder, "executor_output.json")) as handle:
            executor_output = json.load(handle)
        execution_id = client.create_execution(name, timing["image"], executor_input)
        client.launch(execution_id, executor_input, executor_output, succeeded=timing["exit_code"] == 0)
    client.finish(succeeded=info["status"] == "COMPLETE")
