import json
import os

from components import model_files, registry
from components.lineage.store import connect
from components.resolve_baseline.resolve import materialize, resolve_from_metadata, resolve_from_registry


def _model(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    (folder / model_files.MODEL_FILE).write_bytes(name.encode())
    model_files.write_info(str(folder), {"features": []})
    return str(folder)


def test_no_registry_means_no_baseline(tmp_path):
    assert resolve_from_registry(str(tmp_path / "registry"), "m") is None
    out = tmp_path / "out"
    assert materialize(None, str(out)) == {"found": False}
    assert os.listdir(out) == []


def test_latest_published_model_is_the_baseline(tmp_path):
    reg = str(tmp_path / "registry")
    registry.publish(reg, "m", _model(tmp_path, "a"), {"metrics": {"auc": 0.7}, "run_id": "r1"})
    registry.publish(reg, "m", _model(tmp_path, "b"), {"metrics": {"auc": 0.72}, "run_id": "r2"})
    pointer = resolve_from_registry(reg, "m")
    assert pointer["version"] == "v0002" and pointer["previous_version"] == "v0001"
    meta = materialize(pointer, str(tmp_path / "out"))
    assert meta["found"] and meta["metrics"] == {"auc": 0.72} and meta["run_id"] == "r2"
    assert (tmp_path / "out" / model_files.MODEL_FILE).read_bytes() == b"b"
    assert registry.versions(reg, "m") == ["v0001", "v0002"]
    history = [json.loads(line) for line in open(os.path.join(reg, "m", registry.HISTORY))]
    assert [h["version"] for h in history] == ["v0001", "v0002"]


def test_pointer_to_a_vanished_model_is_no_baseline(tmp_path):
    reg = str(tmp_path / "registry")
    pointer = registry.publish(reg, "m", _model(tmp_path, "a"), {})
    os.remove(os.path.join(pointer["model_dir"], model_files.MODEL_FILE))
    assert resolve_from_registry(reg, "m") is None


def test_baseline_from_metadata_is_the_latest_deployed_model(tmp_path, record):
    from lineage_runs import make_run

    store_uri = str(tmp_path / "mlmd.sqlite")
    assert resolve_from_metadata(store_uri, "flights-delay") is None
    run_dir = make_run(str(tmp_path / "runs"), "r1", 0.7, True, version="v0001")
    record(connect(store_uri), run_dir)
    assert resolve_from_metadata(store_uri, "flights-delay") is None  # recorded folder /registry/v0001 is gone
    model_dir = _model(tmp_path, "v0002")
    run_dir = make_run(str(tmp_path / "runs"), "r2", 0.72, True, version="v0002", started=10)
    with open(os.path.join(run_dir, "r2", "deploy", "executor_output.json")) as handle:
        output = json.load(handle)
    output["artifacts"]["deployment"]["artifacts"][0]["metadata"]["model_dir"] = model_dir
    with open(os.path.join(run_dir, "r2", "deploy", "executor_output.json"), "w") as handle:
        json.dump(output, handle)
    record(connect(store_uri), run_dir)
    pointer = resolve_from_metadata(store_uri, "flights-delay")
    assert pointer["version"] == "v0002" and pointer["run_id"] == "r2" and pointer["metrics"]["auc"] == 0.72
    assert materialize(pointer, str(tmp_path / "out"))["found"]


def test_after_a_rollback_the_baseline_is_the_rolled_back_to_version(tmp_path, record):
    from lineage_runs import make_run

    store_uri, reg = str(tmp_path / "mlmd.sqlite"), str(tmp_path / "registry")
    for index, version in enumerate(["v0001", "v0002"]):
        pointer = registry.publish(reg, "flights-delay", _model(tmp_path, f"m{index}"), {})
        assert pointer["version"] == version
        run_dir = make_run(str(tmp_path / "runs"), f"r{index}", 0.7 + index / 100, True, version=version,
                           started=index * 10)
        path = os.path.join(run_dir, f"r{index}", "deploy", "executor_output.json")
        output = json.load(open(path))
        output["artifacts"]["deployment"]["artifacts"][0]["metadata"]["model_dir"] = pointer["model_dir"]
        json.dump(output, open(path, "w"))
        record(connect(store_uri), run_dir)
    assert resolve_from_metadata(store_uri, "flights-delay", reg)["version"] == "v0002"
    registry.rollback(reg, "flights-delay")
    assert resolve_from_metadata(store_uri, "flights-delay", reg)["version"] == "v0001"


def test_production_version_changes_with_each_deployment_and_rollback(tmp_path):
    from components.registry import production_version

    root = str(tmp_path / "registry")
    assert production_version(root, "flights-delay") == "none"
    registry.publish(root, "flights-delay", _model(tmp_path, "a"), {})
    after_first = production_version(root, "flights-delay")
    assert after_first.startswith("v0001@")
    registry.publish(root, "flights-delay", _model(tmp_path, "b"), {})
    assert production_version(root, "flights-delay").startswith("v0002@")
    registry.rollback(root, "flights-delay", "v0001")
    assert production_version(root, "flights-delay").startswith("v0001@")


def test_only_this_namespace_s_deployments_by_this_pipeline_are_production(tmp_path, record):
    """A cluster's store holds every profile's runs: another namespace's (or another pipeline's) deployment
    of a model with the same name, even a newer one, is not our baseline."""
    from lineage_runs import make_run

    store_uri = str(tmp_path / "mlmd.sqlite")
    ours = _model(tmp_path, "ours")
    for run_id, namespace, pipeline, started in (("r1", "team-a", "continuous-training", 0),
                                                 ("r2", "team-b", "continuous-training", 10),
                                                 ("r3", "team-a", "someone-elses-pipeline", 20)):
        run_dir = make_run(str(tmp_path / "runs"), run_id, 0.7, True, version=f"v000{run_id[1]}", started=started,
                           namespace=namespace, pipeline_name=pipeline)
        path = os.path.join(run_dir, run_id, "deploy", "executor_output.json")
        with open(path) as handle:
            output = json.load(handle)
        output["artifacts"]["deployment"]["artifacts"][0]["metadata"]["model_dir"] = ours
        with open(path, "w") as handle:
            json.dump(output, handle)
        record(connect(store_uri), run_dir)
    assert resolve_from_metadata(store_uri, "flights-delay")["run_id"] == "r3"  # unscoped: the newest of all
    assert resolve_from_metadata(store_uri, "flights-delay", namespace="team-a",
                                 pipeline_name="continuous-training")["run_id"] == "r1"
    assert resolve_from_metadata(store_uri, "flights-delay", namespace="team-b",
                                 pipeline_name="continuous-training")["run_id"] == "r2"
    assert resolve_from_metadata(store_uri, "flights-delay", namespace="team-c",
                                 pipeline_name="continuous-training") is None


def test_an_online_experiment_s_candidate_is_the_baseline_only_once_promoted(tmp_path, record):
    """deploy records the candidate as deployed (canary): production stays what the registry points at."""
    from lineage_runs import make_run

    store_uri, reg = str(tmp_path / "mlmd.sqlite"), str(tmp_path / "registry")
    store = registry.open_registry(reg)
    for index, version in enumerate(["v0001", "v0002"]):
        pointer = store.publish("flights-delay", _model(tmp_path, f"m{index}"), {}, point=index == 0)
        if index:
            store.start_experiment("flights-delay", pointer, 50)
        run_dir = make_run(str(tmp_path / "runs"), f"r{index}", 0.7 + index / 100, True, version=version,
                           started=index * 10)
        path = os.path.join(run_dir, f"r{index}", "deploy", "executor_output.json")
        output = json.load(open(path))
        output["artifacts"]["deployment"]["artifacts"][0]["metadata"].update(model_dir=pointer["model_dir"],
                                                                             canary=bool(index))
        json.dump(output, open(path, "w"))
        record(connect(store_uri), run_dir)
    assert resolve_from_metadata(store_uri, "flights-delay", reg)["version"] == "v0001"
    assert resolve_from_metadata(store_uri, "flights-delay")["version"] == "v0001"  # no registry: canaries skipped
    store.promote("flights-delay")
    assert resolve_from_metadata(store_uri, "flights-delay", reg)["version"] == "v0002"
