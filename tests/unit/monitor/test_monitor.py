"""The monitor service through its HTTP app (Starlette's test client; real TFDV, real Parquet)."""

import json

import numpy as np
import pytest
from conftest import event, flights, log_frame
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from components.dataset_spec import DatasetSpec
from components.monitor.analysis import Thresholds
from components.monitor.app import create_app
from components.monitor.monitor import Monitor
from components.paths import REPO_ROOT

FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")


def _client(tmp_path, registry_dir=None, spec=FLIGHTS, **thresholds):
    monitor = Monitor(str(tmp_path / "monitor"), registry_dir, spec, Thresholds.from_spec(spec, **thresholds))
    return monitor, TestClient(create_app(monitor, max_body_bytes=200_000))


def _labels_for(client, ids, labels):
    records = [{"request_id": r, "index": i, "label": int(y)} for (r, i), y in zip(ids, labels)]
    answer = client.post("/v1/ground-truth", json=records)
    assert answer.status_code == 200 and answer.json()["stored"] == len(records)


def _metrics(client):
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}


def test_malformed_events_get_4xx_and_valid_ones_are_all_kept(tmp_path):
    monitor, client = _client(tmp_path)
    frame = flights(60, seed=3)
    log_frame(client, frame.head(30), np.full(30, 0.3), "before", batch=10)
    headers, data = event("request", "x1", {"instances": [{"carrier": "UA"}]})
    bad = [
        ({"content-type": "application/json"}, b'{"instances": []}', "not a CloudEvent"),
        ({**headers, "ce-type": "com.example.other"}, data, "event type"),
        ({k: v for k, v in headers.items() if k != "ce-id"}, data, "not a CloudEvent"),
        (headers, b"{not json", "not valid JSON"),
        (headers, b"[1, 2]", "must be a JSON object"),
        (event("request", "x2", {"instances": "UA"})[0], json.dumps({"instances": "UA"}).encode(), "non-empty list"),
        (event("request", "x3", {"rows": []})[0], b'{"rows": []}', "neither 'instances'"),
        (event("response", "x4", {})[0], json.dumps({"probabilities": ["high"]}).encode(), "list of numbers"),
    ]
    for bad_headers, body, expected in bad:
        answer = client.post("/", headers=bad_headers, content=body)
        assert answer.status_code == 400, (expected, answer.text)
        assert expected in answer.json()["error"]
    too_big = client.post("/", headers=headers, content=b"x" * 300_000)
    assert too_big.status_code == 413 and "limit" in too_big.json()["error"]
    log_frame(client, frame.tail(30), np.full(30, 0.6), "after", batch=10)
    result = client.post("/v1/windows/close", params={"label": "w1"}).json()
    assert result["rows"] == 60 and result["model_version"] == "v0001"
    stored = monitor.store.window_frame("w1")
    assert sorted(stored["request_id"].unique()) == sorted({f"before-{i}" for i in (0, 10, 20)}
                                                           | {f"after-{i}" for i in (0, 10, 20)})
    assert stored["carrier"].tolist() == frame["carrier"].tolist()
    metrics = _metrics(client)
    assert metrics[("ct_monitor_rejected_total", (("reason", "bad_body"),))] == 6
    assert metrics[("ct_monitor_rejected_total", (("reason", "not_cloudevent"),))] == 2
    assert metrics[("ct_monitor_rejected_total", (("reason", "too_large"),))] == 1
    assert metrics[("ct_monitor_predictions_total", ())] == 60


def test_responses_before_requests_and_v2_bodies_join(tmp_path):
    monitor, client = _client(tmp_path)
    frame = flights(4, seed=5)
    columns = {name: frame[name].tolist() for name in frame.columns}
    v2_request = {"inputs": [{"name": n, "shape": [4], "datatype": "BYTES" if isinstance(v[0], str) else "FP64",
                              "data": v} for n, v in columns.items()]}
    v2_response = {"model_name": "flights-delay", "model_version": "v0002",
                   "outputs": [{"name": "probability", "shape": [4], "datatype": "FP64", "data": [.1, .2, .3, .4]}]}
    for kind, body in (("response", v2_response), ("request", v2_request)):
        headers, data = event(kind, "v2-1", body)
        assert client.post("/v1/events", headers=headers, content=data).status_code == 202
    result = client.post("/v1/windows/close", params={"label": "w1"}).json()
    assert result["rows"] == 4 and result["model_version"] == "v0002"
    assert monitor.store.window_frame("w1")["score"].tolist() == [.1, .2, .3, .4]


def test_ground_truth_json_and_csv_bad_batches_store_nothing(tmp_path):
    monitor, client = _client(tmp_path)
    good_csv = "request_id,index,label\nr1,0,1\nr1,1,0\n"
    answer = client.post("/v1/ground-truth", content=good_csv, headers={"content-type": "text/csv"})
    assert answer.json() == {"stored": 2}
    for body, kind in ((json.dumps([{"request_id": "r2", "label": 1}, {"request_id": "r3", "label": 7}]),
                        "application/json"),
                       ("{oops", "application/json"), ("id,label\nr4,1\n", "text/csv"),
                       (json.dumps([{"index": 0, "label": 1}]), "application/json")):
        answer = client.post("/v1/ground-truth", content=body, headers={"content-type": kind})
        assert answer.status_code == 400, answer.text
    assert monitor.store.ground_truth == {("r1", 0): 1, ("r1", 1): 0}
    # Kept across a restart.
    assert Monitor(str(tmp_path / "monitor"), None, FLIGHTS).store.ground_truth == monitor.store.ground_truth


def test_window_labels_are_checked_and_never_overwritten(tmp_path):
    _, client = _client(tmp_path)
    assert client.post("/v1/windows/close", params={"label": "../etc"}).status_code == 400
    assert client.post("/v1/windows/close", params={"label": "w1"}).status_code == 200
    assert client.post("/v1/windows/close", params={"label": "w1"}).status_code == 409
    assert client.post("/v1/windows/nope/evaluate").status_code == 404


def test_drift_skew_and_degradation_fire_on_their_side_of_the_thresholds(tmp_path, registry_dir):
    monitor, client = _client(tmp_path, registry_dir, drift=0.1, skew=0.1, max_metric_drop=0.05,
                             min_labeled_rows=100)
    rng = np.random.default_rng(0)
    # Window 1: like the training sample; labels follow the scores (AUC well above the blessed 0.80).
    same = flights(600, seed=11)
    scores = rng.uniform(0, 1, 600)
    ids = log_frame(client, same, scores, "a")
    _labels_for(client, ids, (scores > 0.5).astype(int))
    first = client.post("/v1/windows/close", params={"label": "2013-01"}).json()
    assert first["drift"] == {} and first["previous_window"] is None
    assert first["skewed_features"] == [] and max(first["skew"].values()) < 0.1
    assert first["auc"] > 0.95 and first["metric"] == "auc" and first["metric_value"] == first["auc"]
    assert first["degraded"] is False
    # Window 2: temperature moved 30 degrees and a new carrier; labels unrelated to the scores.
    moved = flights(600, seed=12, temp_shift=30, carriers=("UA", "EV", "DL", "B6"))
    scores = rng.uniform(0, 1, 600)
    ids = log_frame(client, moved, scores, "b")
    _labels_for(client, ids, rng.integers(0, 2, 600))
    second = client.post("/v1/windows/close", params={"label": "2013-02"}).json()
    assert second["previous_window"] == "2013-01"
    assert "temp" in second["drifted_features"] and "temp" in second["skewed_features"]
    assert second["drift"]["distance"] < 0.1 and "distance" not in second["drifted_features"]
    assert second["degraded"] is True and second["blessed_metric"] == 0.80
    assert second["metric_drop"] == pytest.approx(0.80 - second["auc"]) and second["metric_drop"] > 0.05
    status = client.get("/v1/status").json()
    assert [w["window"] for w in status["windows"]] == ["2013-01", "2013-02"] and status["latest"] == second
    metrics = _metrics(client)
    assert metrics[("ct_monitor_degraded", ())] == 1
    assert metrics[("ct_monitor_feature_drift", (("feature", "temp"),))] == pytest.approx(second["drift"]["temp"])
    assert metrics[("ct_monitor_blessed_metric", (("metric", "auc"), ("model_version", "v0001")))] == 0.80
    assert metrics[("ct_monitor_metric_drop", (("metric", "auc"),))] == pytest.approx(second["metric_drop"])


def test_too_few_labels_never_count_as_degradation(tmp_path, registry_dir):
    _, client = _client(tmp_path, registry_dir, min_labeled_rows=500)
    scores = np.random.default_rng(1).uniform(0, 1, 200)
    ids = log_frame(client, flights(200, seed=2), scores, "c")
    _labels_for(client, ids, (scores < 0.5).astype(int))  # perfectly wrong, but only 200 labels
    result = client.post("/v1/windows/close", params={"label": "w"}).json()
    assert result["auc"] < 0.05 and result["metric_drop"] is None and result["degraded"] is False


def test_late_ground_truth_is_taken_by_a_new_evaluation(tmp_path, registry_dir):
    _, client = _client(tmp_path, registry_dir, min_labeled_rows=50)
    scores = np.random.default_rng(2).uniform(0, 1, 100)
    ids = log_frame(client, flights(100, seed=4), scores, "d")
    assert client.post("/v1/windows/close", params={"label": "w"}).json()["labeled_rows"] == 0
    _labels_for(client, ids, (scores > 0.5).astype(int))
    again = client.post("/v1/windows/w/evaluate").json()
    assert again["labeled_rows"] == 100 and again["auc"] == 1.0


def test_a_regression_model_is_watched_on_its_own_metric_rmse(tmp_path):
    """The taxi fare example: predictions logged (V1 and V2), ground truth in dollars, RMSE against blessed."""
    from conftest import publish_reference

    fare = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/taxi_fare/spec.toml")
    rng = np.random.default_rng(7)
    sample = publish_reference(tmp_path / "registry", fare, rng, {"rmse": 3.0, "mae": 1.0})
    monitor, client = _client(tmp_path, str(tmp_path / "registry"), spec=fare, min_labeled_rows=100)
    assert monitor.thresholds.max_metric_drop == fare.monitoring["max_metric_drop"]
    records = json.loads(sample.to_json(orient="records"))
    truth = rng.uniform(5, 40, len(records))
    ids = []
    for window, noise in (("q1", 2.0), ("q2", 12.0)):
        for start in range(0, 200, 50):
            event_id = f"{window}-{start}"
            predicted = (truth[start:start + 50] + rng.normal(0, noise, 50)).tolist()
            response = {"predictions": predicted, "model_version": "v0001"} if start % 100 else {
                "model_name": fare.model_name, "model_version": "v0001",
                "outputs": [{"name": "prediction", "shape": [50], "datatype": "FP64", "data": predicted}]}
            for kind, body in (("request", {"instances": records[start:start + 50]}), ("response", response)):
                headers, data = event(kind, event_id, body)
                assert client.post("/", headers=headers, content=data).status_code == 202
            ids.extend((event_id, i) for i in range(50))
        labels = [{"request_id": r, "index": i, "label": float(truth[int(r.split("-")[1]) + i])}
                  for r, i in ids[-200:]]
        assert client.post("/v1/ground-truth", json=labels).json() == {"stored": 200}
        result = client.post("/v1/windows/close", params={"label": window}).json()
        assert result["metric"] == "rmse" and result["labeled_rows"] == 200
        assert result["metric_value"] == pytest.approx(result["rmse"]) and result["blessed_metric"] == 3.0
        assert result["metric_drop"] == pytest.approx(result["rmse"] - 3.0)  # lower is better: a rise is worse
        if window == "q1":
            assert result["rmse"] < 3.0 and result["degraded"] is False
        else:
            assert result["rmse"] > 4.0 and result["degraded"] is True
    # A regression's ground truth is a number; a probability of a class is not asked for.
    bad = client.post("/v1/ground-truth", json=[{"request_id": "q1-0", "label": "NaN"}])
    assert bad.status_code == 400 and "finite number" in bad.json()["error"]
