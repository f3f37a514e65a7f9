"""A regressor of another dataset (the taxi fare example's spec) served V1 and V2: values, parity, refusals."""

import numpy as np
import pandas as pd
import pytest

from components.dataset_spec import DatasetSpec
from components.model_server import control
from components.model_server.model import LoadedModel
from components.paths import REPO_ROOT

SPEC = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/taxi_fare/spec.toml")


def _trips(rows=600, seed=0):
    rng = np.random.default_rng(seed)
    miles = rng.exponential(3, rows)
    frame = pd.DataFrame({
        "company": rng.choice(["Taxi Affiliation Services", "Flash Cab", None], rows),
        "trip_miles": miles, "trip_seconds": miles * 240 + rng.uniform(0, 60, rows),
        "trip_start_hour": rng.integers(0, 24, rows), "trip_start_day": rng.integers(1, 8, rows),
        "trip_start_month": rng.integers(1, 13, rows), "pickup_community_area": rng.integers(1, 78, rows) * 1.0,
        "dropoff_community_area": rng.integers(1, 78, rows) * 1.0,
        # Inside the taxi schema's domains (the served model's guard).
        "pickup_latitude": rng.uniform(41.8, 41.95, rows), "pickup_longitude": rng.uniform(-87.7, -87.6, rows),
        "dropoff_latitude": rng.uniform(41.8, 41.95, rows), "dropoff_longitude": rng.uniform(-87.7, -87.6, rows),
    })
    frame[SPEC.label] = 3.25 + 2.25 * miles
    return frame


@pytest.fixture(scope="module")
def fare_model(tmp_path_factory):
    from components.train.train import save, train

    folder = tmp_path_factory.mktemp("fare-model")
    frame = _trips()
    pipeline, _ = train(frame, frame.head(50), SPEC, {"max_iter": 30})
    save(pipeline, str(folder), SPEC, {})
    return str(folder), pipeline, frame


def test_the_regressor_takes_the_compiled_path_bit_for_bit(fare_model):
    folder, pipeline, frame = fare_model
    loaded = LoadedModel(folder, "v", threads=1, compiled=True)
    assert loaded.task == "regression" and loaded.compiled is not None, loaded.path_note
    from components.model_server.inputs import instances_to_columns

    rows = frame[SPEC.features].head(40).replace({np.nan: None}).to_dict(orient="records")
    columns = instances_to_columns(rows, SPEC.features, SPEC.categorical)
    assert np.array_equal(loaded.predict(columns.values, columns.rows),
                          pipeline.predict(frame[SPEC.features].head(40)))


def test_a_regressor_answers_its_values_v1_and_v2_and_refuses_what_the_schema_refuses(fare_model, tmp_path):
    folder, pipeline, frame = fare_model
    port = control.free_port()
    process = control.start_process(["--model-dir", folder], "taxi-fare", port, str(tmp_path / "server.log"))
    try:
        url = f"http://127.0.0.1:{port}"
        control.wait_ready(url, "taxi-fare", 60, process)
        rows = frame[SPEC.features].head(5).replace({np.nan: None}).to_dict(orient="records")
        status, body = control.http_json("POST", f"{url}/v1/models/taxi-fare:predict", {"instances": rows})
        assert status == 200 and "probabilities" not in body, body
        assert body["predictions"] == pipeline.predict(frame[SPEC.features].head(5)).tolist()
        v2 = {"inputs": [{"name": name, "shape": [5], "datatype": "BYTES" if name in SPEC.categorical else "FP64",
                          "data": [row[name] for row in rows]} for name in SPEC.features]}
        status, answer = control.http_json("POST", f"{url}/v2/models/taxi-fare/infer", v2)
        assert status == 200 and [o["name"] for o in answer["outputs"]] == ["prediction"]
        assert answer["outputs"][0]["data"] == body["predictions"]
        # The taxi schema travels in the model folder: a month 20 is refused, the server stays up.
        status, refused = control.http_json("POST", f"{url}/v1/models/taxi-fare:predict",
                                            {"instances": [{**rows[0], "trip_start_month": 20}]})
        assert status == 400 and "trip_start_month" in str(refused)
        assert control.http_json("POST", f"{url}/v1/models/taxi-fare:predict", {"instances": rows[:1]})[0] == 200
    finally:
        control.stop_process(process.pid)
