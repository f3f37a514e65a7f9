"""The monitor's judge of an online experiment, through its HTTP app: evidence per version, decisions, registry."""

import json
import time

import numpy as np
import pytest
from conftest import flights
from starlette.testclient import TestClient

from components import model_files, registry
from components.dataset_spec import DatasetSpec
from components.experiment.rules import ExperimentRules
from components.model_server.payload_logger import REQUEST_TYPE, RESPONSE_TYPE, to_binary_event
from components.monitor.app import create_app
from components.monitor.monitor import Monitor
from components.paths import REPO_ROOT

FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")
MODEL = "flights-delay"
RULES = ExperimentRules(min_labelled_rows=100, min_class_rows=10, min_effect=0.05, min_guard_requests=20)


def _candidate(tmp_path, registry_root):
    """Publishes a second version and starts an experiment with it at 50 %."""
    folder = tmp_path / "second"
    folder.mkdir()
    (folder / model_files.MODEL_FILE).write_bytes(b"another model")
    model_files.write_info(str(folder), {"features": FLIGHTS.features})
    store = registry.open_registry(registry_root)
    return store, store.start_experiment(MODEL, store.publish(MODEL, str(folder), {}, point=False), 50)


def _send(client, version, event_id, rows, scores, at, answered=True, latency=0.002):
    records = json.loads(rows.to_json(orient="records"))
    for kind, body, when in (("request", {"instances": records}, at),
                             ("response", {"probabilities": list(scores), "model_version": version}, at + latency)):
        if kind == "response" and not answered:
            return
        headers, data = to_binary_event(REQUEST_TYPE if kind == "request" else RESPONSE_TYPE, event_id, body,
                                        "http://localhost:8080/", MODEL, model_version=version, at=when)
        assert client.post("/", headers=headers, content=data).status_code == 202


def _app(tmp_path, registry_root, rules=RULES):
    monitor = Monitor(str(tmp_path / "monitor"), registry_root, FLIGHTS, experiment_rules=rules)
    return monitor, TestClient(create_app(monitor))


def test_the_better_candidate_is_promoted_from_the_ground_truth_of_its_own_traffic(tmp_path, registry_dir):
    store, _ = _candidate(tmp_path, registry_dir)
    _, client = _app(tmp_path, registry_dir)
    rng = np.random.default_rng(0)
    now, truth = time.time(), []
    for request in range(60):
        version = "v0002" if request % 2 else "v0001"
        labels = (rng.random(10) < 0.3).astype(int)
        # The candidate ranks the delayed flights first; production guesses.
        scores = (0.4 * labels + 0.6 * rng.random(10)) if version == "v0002" else rng.random(10)
        _send(client, version, f"r{request}", flights(10, seed=request), scores, now + request * 0.01)
        truth += [{"request_id": f"r{request}", "index": i, "label": int(y)} for i, y in enumerate(labels)]
    assert client.get("/v1/experiment").json()["last_look"] is None  # nothing looked yet
    answer = client.post("/v1/ground-truth", json=truth)  # the monitor looks after storing it
    assert answer.status_code == 200
    decisions = client.get("/v1/experiment").json()["decisions"]
    assert [d["outcome"] for d in decisions] == ["promote"], decisions
    arms = decisions[0]["statistics"]["arms"]
    assert arms["candidate"]["labelled_rows"] == arms["production"]["labelled_rows"] == 300
    assert arms["candidate"]["requests"] == 30 and arms["candidate"]["errors"] == 0
    assert arms["candidate"]["p99_latency_ms"] < 10
    assert arms["candidate"]["metric_value"] > 0.8 > 0.6 > arms["production"]["metric_value"]
    assert store.current(MODEL)["version"] == "v0002" and store.canary(MODEL) is None
    assert store.current(MODEL)["experiment"]["outcome"] == "promote"
    status = client.get("/v1/status").json()
    assert status["experiment_decisions"][0]["candidate_version"] == "v0002"
    metrics = client.get("/metrics").text
    assert 'ct_monitor_experiment_decisions_total{outcome="promote"} 1.0' in metrics
    assert "ct_monitor_experiment_running 0.0" in metrics
    # A look after the decision: no experiment runs.
    assert client.post("/v1/experiment").json() == {"running": False}
    assert len(client.get("/v1/experiment").json()["looks"]) == 1


def test_a_candidate_that_does_not_answer_is_rolled_back_by_the_error_guard(tmp_path, registry_dir):
    store, _ = _candidate(tmp_path, registry_dir)
    monitor, client = _app(tmp_path, registry_dir)
    rng = np.random.default_rng(1)
    now = time.time()
    for request in range(60):
        version = "v0002" if request % 2 else "v0001"
        _send(client, version, f"r{request}", flights(5, seed=request), rng.random(5), now + request * 0.01,
              answered=version == "v0001" or request % 3 == 0)
    assert client.post("/v1/experiment").json()["outcome"] == "continue"  # not an error yet: maybe on its way
    monitor.experiments.clock = lambda: now + 120  # two minutes on: unanswered past ERROR_AFTER_SECONDS
    look = client.post("/v1/experiment").json()
    assert look["outcome"] == "roll_back" and look["reason"].startswith("guard: error rate"), look["reason"]
    assert look["statistics"]["arms"]["candidate"]["errors"] == 20
    assert store.current(MODEL)["version"] == "v0001" and store.canary(MODEL) is None
    assert [entry["event"] for entry in store.history(MODEL)][-2:] == ["experiment_started", "experiment_rolled_back"]


def test_without_an_experiment_nothing_is_looked_at_and_production_stays(tmp_path, registry_dir):
    _, client = _app(tmp_path, registry_dir)
    assert client.post("/v1/experiment").json() == {"running": False}
    assert registry.open_registry(registry_dir).current(MODEL)["version"] == "v0001"
    assert client.get("/v1/experiment").json() == {"last_look": None, "decisions": [], "looks": []}


def test_a_window_served_by_two_versions_judges_production_on_its_own_rows(tmp_path, registry_dir):
    _candidate(tmp_path, registry_dir)
    _, client = _app(tmp_path, registry_dir, ExperimentRules(min_labelled_rows=5000))  # undecided: it runs on
    rng = np.random.default_rng(2)
    now, truth = time.time(), []
    for request in range(60):
        version = "v0001" if request % 3 == 0 else "v0002"  # the candidate served more: 40 requests to 20
        labels = (rng.random(10) < 0.3).astype(int)
        scores = labels * 0.9 + 0.05 if version == "v0002" else rng.random(10)  # the candidate is perfect
        _send(client, version, f"r{request}", flights(10, seed=request), scores, now + request * 0.01)
        truth += [{"request_id": f"r{request}", "index": i, "label": int(y)} for i, y in enumerate(labels)]
    assert client.post("/v1/ground-truth", json=truth).status_code == 200
    window = client.post("/v1/windows/close", params={"label": "w1"}).json()
    assert window["rows"] == 600 and window["rows_by_version"] == {"v0001": 200, "v0002": 400}
    assert window["model_version"] == "v0001" and window["labeled_rows"] == 200
    assert window["auc"] < 0.7  # production's own rows: the candidate's perfect answers are not mixed in


def test_a_decision_is_recorded_once_for_the_running_candidate_only(tmp_path, registry_dir):
    store, canary = _candidate(tmp_path, registry_dir)
    with pytest.raises(ValueError, match="v0001 is not in an experiment"):
        store.decide_experiment(MODEL, "v0001", {"outcome": "promote"})
    decided = store.decide_experiment(MODEL, "v0002", {"outcome": "roll_back", "reason": "worse"})
    assert decided["experiment"]["decision"] == {"outcome": "roll_back", "reason": "worse"}
    assert store.canary(MODEL) == decided and store.current(MODEL)["version"] == "v0001"  # no traffic moved
    with pytest.raises(ValueError, match="decided already: roll_back"):
        store.decide_experiment(MODEL, "v0002", {"outcome": "promote"})
    assert [h["event"] for h in store.history(MODEL)][-2:] == ["experiment_started", "experiment_decided"]
