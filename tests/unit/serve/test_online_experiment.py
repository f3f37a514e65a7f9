"""Online experiments, locally: two versions serve at once, and the monitor decides on live ground truth.

Everything is real: the KServe model server process following the registry, the monitor process
(monitor runtime) receiving its payload-log events and the ground truth, the registry on disk.
"""

import json
import os
import time
import urllib.request
import uuid
from collections import Counter

import pytest

from components import registry
from components.deploy.deploy import deploy
from components.model_server import control
from components.model_server.server import EXPERIMENT_KEY_HEADER
from components.monitor import control as monitor_control

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MONITOR_PYTHON = os.path.join(REPO_ROOT, ".venvs", "monitor", "bin", "python")
FLIGHTS_SPEC = os.path.join(REPO_ROOT, "pipelines", "examples", "flights", "spec.toml")
MODEL = "flights-delay"
BLESSED = {"blessed": True}


def _answer(url, instances, key=None):
    headers = {"ce-id": str(uuid.uuid4()), **({EXPERIMENT_KEY_HEADER: key} if key else {})}
    status, body = control.http_json("POST", url, {"instances": instances}, headers=headers)
    assert status == 200, body
    return headers["ce-id"], body


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _wait_for(condition, problem, timeout=60.0):
    """Waits until ``condition()`` holds (a busy machine is slow, so no fixed sleep); fails with ``problem``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, problem
        time.sleep(0.05)


def _joined_rows(monitor_url):
    """Rows the monitor has joined from request and response events (its open window)."""
    return monitor_control.request("GET", f"{monitor_url}/v1/status")[1]["pending"]["rows"]


def test_a_candidate_answers_its_share_sticky_by_key_and_takes_all_traffic_once_promoted(
        tmp_path, trained, other_model, samples):
    registry_uri, state_dir = str(tmp_path / "registry"), str(tmp_path / "serving")
    registry.publish(registry_uri, MODEL, trained[0], {})
    state = control.ensure_serving(state_dir, registry_uri, MODEL, control.free_port())
    try:
        deployed, details = deploy(other_model, BLESSED, BLESSED, registry_uri, MODEL, {}, state_dir, state["port"],
                                   experiment_percent=30)
        assert deployed and details["experiment"] and details["serving"]["pid"] == state["pid"]
        assert registry.current(registry_uri, MODEL)["version"] == "v0001"  # production untouched
        assert registry.open_registry(registry_uri).canary(MODEL)["traffic_percent"] == 30
        row = samples["instances"][:1]
        by_key = {f"user-{n}": _answer(state["predict_url"], row, f"user-{n}")[1]["model_version"]
                  for n in range(300)}
        shares = Counter(by_key.values())
        assert set(shares) == {"v0001", "v0002"}
        assert 60 <= shares["v0002"] <= 120, shares  # 30% of 300 is 90; binomial sd 7.9
        for key in list(by_key)[:40]:  # the same key stays on its version
            assert _answer(state["predict_url"], row, key)[1]["model_version"] == by_key[key]
        keyless = Counter(_answer(state["predict_url"], row)[1]["model_version"] for _ in range(100))
        assert set(keyless) == {"v0001", "v0002"}, keyless
        # Our probes: production by default, the candidate when asked.
        assert control.served_version(state["url"], MODEL) == "v0001"
        assert control.served_version(state["url"], MODEL, probe="candidate") == "v0002"
        # While it runs, another candidate waits: production and the experiment are left alone.
        refused, why = deploy(trained[0], BLESSED, BLESSED, registry_uri, MODEL, {}, state_dir, state["port"],
                              experiment_percent=30)
        assert not refused and "v0002 is in an online experiment" in why["reasons"][0]
        registry.open_registry(registry_uri).promote(MODEL)
        control.wait_version(state["url"], MODEL, "v0002")
        _wait_for(lambda: "experiment ended" in _read(os.path.join(state_dir, "server.log")),
                  "the server did not end the experiment")
        after = Counter(_answer(state["predict_url"], row, f"user-{n}")[1]["model_version"] for n in range(60))
        assert after == {"v0002": 60}
        assert control.status(state_dir)["pid"] == state["pid"]  # the same process all along
    finally:
        control.stop(state_dir)
    with open(os.path.join(state_dir, "server.log"), encoding="utf-8") as handle:
        log = handle.read()
    assert "experiment: v0002 answers 30% of the requests, v0001 the rest" in log
    assert "experiment ended: flights-delay v0002 takes all traffic" in log
    events = [entry["event"] for entry in registry.open_registry(registry_uri).history(MODEL)]
    assert events == ["deploy", "experiment_started", "promote", "promoted"]


@pytest.fixture
def monitored(tmp_path):
    """A monitor process with a registry and quick experiment rules; yields (registry, monitor URL, state folder)."""
    registry_uri, port = str(tmp_path / "registry"), control.free_port()
    rules = ["min_labelled_rows=150", "min_class_rows=30", "min_effect=0.05", "max_labelled_rows=3000"]
    monitor = monitor_control.start(MONITOR_PYTHON, str(tmp_path / "monitor"), port, str(tmp_path / "monitor.log"),
                                    FLIGHTS_SPEC, registry_uri=registry_uri,
                                    extra=[option for rule in rules for option in ("--experiment", rule)])
    try:
        yield registry_uri, f"http://127.0.0.1:{port}", str(tmp_path / "monitor")
    finally:
        monitor_control.stop(monitor)


def _run_experiment(monitored, tmp_path, production_model, candidate_model, trained):
    """Production serves, the candidate starts an experiment at 50 %, traffic and its ground truth flow
    until the monitor decides; returns (the decision, the answers by version, the server's state folder)."""
    from pipelines.examples.flights import dataset

    registry_uri, monitor_url, _ = monitored
    state_dir = str(tmp_path / "serving")
    registry.publish(registry_uri, MODEL, production_model, {})
    state = control.ensure_serving(state_dir, registry_uri, MODEL, control.free_port(), logger_url=monitor_url)
    answered = Counter()
    try:
        deployed, details = deploy(candidate_model, BLESSED, BLESSED, registry_uri, MODEL, {}, state_dir,
                                   state["port"], logger_url=monitor_url, experiment_percent=50)
        assert deployed and details["experiment"]
        frame = trained[1]
        instances = json.loads(frame[dataset.FEATURES].to_json(orient="records"))
        labels = frame[dataset.LABEL].tolist()
        deadline, batch = time.monotonic() + 240, []
        for request in range(10_000):
            assert time.monotonic() < deadline, "the monitor did not decide in time"
            rows = [(10 * request + n) % len(instances) for n in range(10)]
            event_id, body = _answer(state["predict_url"], [instances[r] for r in rows], f"caller-{request}")
            answered[body["model_version"]] += 10
            batch += [{"request_id": event_id, "index": n, "label": labels[r]} for n, r in enumerate(rows)]
            if len(batch) < 100:
                continue
            # The logger's events have reached the monitor (and been joined) before their labels.
            _wait_for(lambda: _joined_rows(monitor_url) >= sum(answered.values()), "the payload events did not arrive")
            status, _ = monitor_control.request("POST", f"{monitor_url}/v1/ground-truth", json.dumps(batch).encode(),
                                                "application/json")
            assert status == 200
            batch = []
            _, looked = monitor_control.request("GET", f"{monitor_url}/v1/experiment")
            if looked["decisions"]:
                return looked, answered, state_dir, state
    finally:
        control.stop(state_dir)


def test_the_monitor_promotes_a_candidate_better_on_live_ground_truth(monitored, tmp_path, trained,
                                                                      uninformed_model):
    experiment, answered, state_dir, state = _run_experiment(monitored, tmp_path, uninformed_model, trained[0],
                                                             trained)
    decision = experiment["decisions"][-1]
    assert decision["outcome"] == "promote", decision["reason"]
    arms = decision["statistics"]["arms"]
    assert arms["candidate"]["metric_value"] > arms["production"]["metric_value"] + 0.2
    assert decision["statistics"]["likelihood_ratio"] >= 20
    assert min(arms["candidate"]["labelled_rows"], arms["production"]["labelled_rows"]) >= 150
    assert set(answered) == {"v0001", "v0002"}
    registry_uri = monitored[0]
    assert registry.current(registry_uri, MODEL)["version"] == "v0002"
    assert registry.open_registry(registry_uri).canary(MODEL) is None
    assert registry.current(registry_uri, MODEL)["experiment"]["outcome"] == "promote"
    with urllib.request.urlopen(f"{monitored[1]}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    assert 'ct_monitor_experiment_decisions_total{outcome="promote"} 1.0' in text


def test_the_monitor_rolls_back_a_candidate_worse_on_live_ground_truth(monitored, tmp_path, trained,
                                                                       uninformed_model):
    experiment, _, state_dir, _ = _run_experiment(monitored, tmp_path, trained[0], uninformed_model, trained)
    decision = experiment["decisions"][-1]
    assert decision["outcome"] == "roll_back" and "worse" in decision["reason"], decision["reason"]
    registry_uri = monitored[0]
    assert registry.current(registry_uri, MODEL)["version"] == "v0001"  # production untouched
    assert registry.open_registry(registry_uri).canary(MODEL) is None
    events = [entry["event"] for entry in registry.open_registry(registry_uri).history(MODEL)]
    assert events == ["deploy", "experiment_started", "experiment_rolled_back"]
    with open(os.path.join(monitored[2], "experiments.jsonl"), encoding="utf-8") as handle:
        assert json.loads(handle.readline())["outcome"] == "roll_back"


def test_a_registry_version_served_from_a_fixed_folder_answers_as_its_version(tmp_path, trained, samples):
    """As on a cluster: KServe downloads the version to /mnt/models; its release record names it."""
    import shutil

    registry_uri = str(tmp_path / "registry")
    registry.publish(registry_uri, MODEL, trained[0], {})
    mounted = tmp_path / "mnt" / "models"
    shutil.copytree(registry.open_registry(registry_uri).version_dir(MODEL, "v0001"), mounted)
    bare = tmp_path / "candidate"
    shutil.copytree(trained[0], bare)  # a pipeline's model folder (infra validation): no release record
    for folder, expected in ((mounted, "v0001"), (bare, "candidate")):
        port = control.free_port()
        process = control.start_process(["--model-dir", str(folder)], MODEL, port, str(tmp_path / f"{expected}.log"))
        try:
            control.wait_ready(f"http://127.0.0.1:{port}", MODEL, 60, process)
            _, body = _answer(f"http://127.0.0.1:{port}/v1/models/{MODEL}:predict", samples["instances"][:1])
            assert body["model_version"] == expected
        finally:
            control.stop_process(process.pid)
