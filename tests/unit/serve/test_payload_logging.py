"""The model server logs every request and response to a real monitor process, as KServe's logger does."""

import json
import os
import time
import uuid

import pytest

from components import registry
from components.model_server import control
from components.monitor import control as monitor_control

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MONITOR_PYTHON = os.path.join(REPO_ROOT, ".venvs", "monitor", "bin", "python")
FLIGHTS_SPEC = os.path.join(REPO_ROOT, "pipelines", "examples", "flights", "spec.toml")


@pytest.fixture
def logged_server(trained, tmp_path):
    """A monitor process (monitor runtime) and a model server logging to it."""
    folder, _ = trained
    registry_uri = str(tmp_path / "registry")
    registry.publish(registry_uri, "flights-delay", folder, {"metrics": {"auc": 0.9}})
    port = control.free_port()
    monitor = monitor_control.start(MONITOR_PYTHON, str(tmp_path / "monitor"), port, str(tmp_path / "monitor.log"),
                                    FLIGHTS_SPEC, registry_uri=registry_uri)
    monitor_url = f"http://127.0.0.1:{port}"
    state_dir = str(tmp_path / "serving")
    try:
        state = control.ensure_serving(state_dir, registry_uri, "flights-delay", control.free_port(),
                                       logger_url=monitor_url)
        yield state, monitor_url
    finally:
        control.stop(state_dir)
        monitor_control.stop(monitor)


def _post(url, body, event_id=None):
    return control.http_json("POST", url, body, headers={"ce-id": event_id} if event_id else None)


def test_requests_and_responses_reach_the_monitor_joined_by_ce_id(logged_server, samples):
    state, monitor_url = logged_server
    ids, served = [], []
    for start in range(0, 40, 10):
        event_id = str(uuid.uuid4())
        status, body = _post(state["predict_url"], {"instances": samples["instances"][start:start + 10]}, event_id)
        assert status == 200
        ids.append(event_id)
        served.extend(body["probabilities"])
    v2 = {"inputs": [{"name": name, "shape": [2], "datatype": "BYTES" if isinstance(value, str) else "FP64",
                      "data": [row[name] for row in samples["instances"][:2]]}
                     for name, value in samples["instances"][0].items()]}
    status, v2_answer = _post(state["infer_url"], v2, "v2-request")
    assert status == 200
    # Refused requests are logged as requests only (no response): they never become predictions.
    assert _post(state["predict_url"], {"instances": [{"carrier": 3}]}, "refused")[0] == 400
    labels = [{"request_id": event_id, "index": i, "label": int(served[10 * n + i] >= 0.5)}
              for n, event_id in enumerate(ids) for i in range(10)]
    assert monitor_control.request("POST", f"{monitor_url}/v1/ground-truth", json.dumps(labels).encode())[0] == 200
    deadline = time.monotonic() + 60  # events leave the server from a background thread
    while True:
        status, answer = monitor_control.request("GET", f"{monitor_url}/v1/status")
        if answer["pending"]["rows"] >= 42 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert answer["pending"] == {"rows": 42, "requests": 1, "responses": 0}
    status, window = monitor_control.request("POST", f"{monitor_url}/v1/windows/close?label=w1")
    assert status == 200, window
    assert window["rows"] == 42 and window["labeled_rows"] == 40 and window["model_version"] == "v0001"
    assert window["accuracy"] == 1.0 and window["blessed_metric"] == 0.9 and window["metric"] == "auc"
    assert window["skew"] == {}  # this model folder carries no training sample
    stored = _window_probabilities(monitor_url)
    assert stored == pytest.approx(served + [o for o in v2_answer["outputs"] if o["name"] == "probability"][0]["data"])


def _window_probabilities(monitor_url):
    """The probabilities the monitor stored, read back from its Parquet window with the monitor runtime."""
    import subprocess

    # Printed, flushed, then os._exit: the monitor runtime's native threads (TensorFlow's) can abort a normal
    # interpreter exit ("terminate called without an active exception", seen once in a fresh-clone CI run).
    script = ("import json,os,sys; from components.dataset_spec import DatasetSpec; "
              "from components.monitor.monitor import Monitor; "
              "print(json.dumps(Monitor(sys.argv[1], None, DatasetSpec.load(sys.argv[2])).store.window_frame('w1')"
              "['score'].tolist()), flush=True); os._exit(0)")
    _, status = monitor_control.request("GET", f"{monitor_url}/v1/status")
    state = os.path.dirname(os.path.dirname(status["latest"]["window_folder"]))
    out = subprocess.run([MONITOR_PYTHON, "-c", script, state, FLIGHTS_SPEC], capture_output=True, text=True,
                         check=True, cwd=REPO_ROOT,
                         env={**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_monitor_that_is_down_never_fails_a_prediction(trained, tmp_path, samples):
    folder, _ = trained
    registry_uri = str(tmp_path / "registry")
    registry.publish(registry_uri, "flights-delay", folder, {})
    state_dir = str(tmp_path / "serving")
    nobody = f"http://127.0.0.1:{control.free_port()}"
    try:
        state = control.ensure_serving(state_dir, registry_uri, "flights-delay", control.free_port(),
                                       logger_url=nobody)
        for _ in range(5):
            assert _post(state["predict_url"], {"instances": samples["instances"][:3]})[0] == 200
    finally:
        control.stop(state_dir)
    with open(state["log"], encoding="utf-8") as handle:
        assert f"could not reach {nobody}" in handle.read()
