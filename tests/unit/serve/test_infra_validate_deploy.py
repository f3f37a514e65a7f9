import json
import os
import shutil

from components import model_files, registry
from components.deploy.deploy import deploy, refusal_reasons
from components.infra_validate.infra_validate import check_serving, percentile
from components.model_server import control


def test_percentile():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile(list(range(101)), 99) == 99


def test_candidate_that_serves_what_training_predicts_passes(trained, samples):
    result = check_serving(trained[0], samples, max_p99_ms=1000, requests=20)
    assert result["blessed"], result["reasons"]
    assert result["max_difference"] <= 1e-9 and result["p99_ms"] > 0


def test_skew_between_serving_and_training_fails_and_is_named(trained, samples):
    skewed = {**samples, "probabilities": [p + 0.01 for p in samples["probabilities"]]}
    result = check_serving(trained[0], skewed, max_p99_ms=1000, requests=5)
    assert not result["blessed"] and "training/serving skew" in " ".join(result["reasons"])


def test_latency_bound_is_enforced(trained, samples):
    result = check_serving(trained[0], samples, max_p99_ms=0.001, requests=5)
    assert not result["blessed"] and "p99 latency" in result["reasons"][-1] and ">" in result["reasons"][-1]


def test_model_that_cannot_load_fails_infra_validation(tmp_path, trained, samples):
    broken = tmp_path / "broken"
    shutil.copytree(trained[0], broken)
    (broken / model_files.MODEL_FILE).write_bytes(b"not a pickle")
    result = check_serving(str(broken), samples, max_p99_ms=1000, requests=5, ready_timeout=30)
    assert not result["blessed"] and "did not load" in result["reasons"][0]


def test_deploy_refuses_unblessed_models_and_touches_nothing(tmp_path, trained):
    reg, state = str(tmp_path / "registry"), str(tmp_path / "serving")
    for blessing, infra in [({"blessed": False}, {"blessed": True}), ({"blessed": True}, {"blessed": False}),
                            (None, None)]:
        deployed, details = deploy(trained[0], blessing, infra, reg, "m", {}, state, control.free_port())
        assert not deployed and details["reasons"] == refusal_reasons(blessing, infra)
    assert not os.path.exists(reg) and not os.path.exists(state)


def test_deploy_publishes_then_serves_the_new_version(tmp_path, trained, other_model, samples):
    reg, state = str(tmp_path / "registry"), str(tmp_path / "serving")
    port = control.free_port()
    try:
        deployed, details = deploy(trained[0], {"blessed": True}, {"blessed": True}, reg, "m",
                                   {"metrics": {"auc": 0.7}}, state, port)
        assert deployed and details["pointer"]["version"] == "v0001"
        assert registry.current(reg, "m")["model_dir"] == details["pointer"]["model_dir"]
        status, body = control.http_json("POST", details["serving"]["predict_url"],
                                         {"instances": samples["instances"][:2]})
        assert status == 200 and len(body["probabilities"]) == 2
        deployed, details = deploy(trained[0], {"blessed": True}, {"blessed": True}, reg, "m", {}, state, port)
        assert not deployed and "identical to production v0001" in details["reasons"][0]
        assert registry.versions(reg, "m") == ["v0001"]
        deployed, details = deploy(other_model, {"blessed": True}, {"blessed": True}, reg, "m", {}, state, port)
        assert deployed and details["serving"]["version"] == "v0002"
        assert registry.current(reg, "m")["previous_version"] == "v0001"
        assert json.load(open(os.path.join(state, control.STATE_FILE)))["version"] == "v0002"
    finally:
        control.stop(state)


def test_deploy_names_a_taken_port(tmp_path, trained):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        try:
            deploy(trained[0], {"blessed": True}, {"blessed": True}, str(tmp_path / "r"), "m", {},
                   str(tmp_path / "s"), port)
        except RuntimeError as error:
            assert f"port {port}" in str(error) and "serving_port" in str(error)
        else:
            raise AssertionError("deploy should refuse a taken port")
