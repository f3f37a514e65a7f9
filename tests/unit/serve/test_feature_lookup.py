"""The model server's side of the feature store, without one: which features a request carries, and
what it answers when the weather cannot be looked up (a closed port is a real unreachable server).
The lookups themselves are tested against Feast's own feature server (tests/unit/feature, tests/e2e)."""

import shutil

import kserve
import pytest
from kserve.errors import InvalidInput, ServerNotReady

from components import model_files
from components.model_server.features import sent_features
from components.model_server.server import TabularModel
from components.processes import free_port
from pipelines.examples.flights import dataset

FLIGHT = {"carrier": "UA", "origin": "EWR", "dest": "ORD", "month": 5, "day": 17, "sched_dep_time": 1730,
          "sched_arr_time": 1910, "distance": 719}
WEATHER = {"temp": 64.9, "dewp": 51.1, "humid": 61.0, "wind_dir": 200.0, "wind_speed": 12.7, "precip": 0.0,
           "pressure": 1012.3, "visib": 10.0}
FLIGHT_FEATURES = dataset.FLIGHT_FEATURES


@pytest.fixture(scope="module")
def lookup_model(trained, tmp_path_factory):
    """The trained model, with the lookup block train writes."""
    folder = tmp_path_factory.mktemp("lookup-model")
    shutil.copytree(trained[0], folder, dirs_exist_ok=True)
    import pandas as pd

    from components.dataset_spec import DatasetSpec
    from components.paths import REPO_ROOT
    from components.train.train import lookup_block

    info = model_files.read_info(str(folder))
    flights = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")
    block = lookup_block(pd.DataFrame({"span": ["2013-04", "2013-05"]}), flights)
    assert block["defaults"] == {"year": 2013} and block["features"] == dataset.WEATHER_FEATURES
    model_files.write_info(str(folder), {**info, "lookup": block})
    return str(folder)


def _loaded(model_dir, **kwargs):
    model = TabularModel("flights-delay", model_dir=model_dir, **kwargs)
    model.load()
    return model


def _v2(row):
    return kserve.InferRequest(model_name="flights-delay", infer_inputs=[
        kserve.InferInput(name, [1], "BYTES" if isinstance(value, str) else "FP64", [value])
        for name, value in row.items()])


def test_a_request_carries_every_feature_or_all_but_the_looked_up_ones():
    looked_up = dataset.WEATHER_FEATURES
    assert sent_features({"instances": [FLIGHT]}, dataset.FEATURES, looked_up) == FLIGHT_FEATURES
    assert sent_features({"instances": [{**FLIGHT, **WEATHER}]}, dataset.FEATURES, looked_up) == dataset.FEATURES
    assert sent_features({"instances": [{**FLIGHT, "temp": 50.0}]}, dataset.FEATURES, looked_up) == dataset.FEATURES
    assert sent_features({"instances": [list(range(len(FLIGHT_FEATURES)))]}, dataset.FEATURES,
                         looked_up) == FLIGHT_FEATURES
    assert sent_features(_v2(FLIGHT), dataset.FEATURES, looked_up) == FLIGHT_FEATURES
    assert sent_features({"instances": [FLIGHT]}, dataset.FEATURES, []) == dataset.FEATURES


def test_a_model_without_a_feature_store_still_needs_the_weather(trained):
    with pytest.raises(InvalidInput, match="missing feature"):
        _loaded(trained[0])._predict({"instances": [FLIGHT]})


def test_without_a_feature_server_the_weather_must_be_sent(lookup_model):
    model = _loaded(lookup_model)
    with pytest.raises(InvalidInput, match="no feature store to look them up .*--feature-server-url"):
        model._predict({"instances": [FLIGHT]})
    assert model._predict({"instances": [{**FLIGHT, **WEATHER}]})["predictions"] in ([0], [1])


def test_an_unreachable_feature_server_is_a_503_and_a_full_request_still_served(lookup_model, trained):
    model = _loaded(lookup_model, feature_server_url=f"http://127.0.0.1:{free_port()}")
    for payload in ({"instances": [FLIGHT]}, _v2(FLIGHT)):
        with pytest.raises(ServerNotReady, match="cannot be looked up.*cannot be reached"):
            model._predict(payload)
    full = {"instances": [{**FLIGHT, **WEATHER}]}
    assert model._predict(full)["probabilities"] == _loaded(trained[0])._predict(full)["probabilities"]


def test_a_refused_flight_value_is_named_before_any_lookup(lookup_model):
    model = _loaded(lookup_model, feature_server_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(InvalidInput, match="'sched_dep_time'.*above the schema's maximum"):
        model._predict({"instances": [{**FLIGHT, "sched_dep_time": 2730}]})
    with pytest.raises(InvalidInput, match="instance 0: feature 'origin' is null"):
        model._predict({"instances": [{**FLIGHT, "origin": None}]})
    with pytest.raises(InvalidInput, match="instance 1: unknown feature"):
        model._predict({"instances": [FLIGHT, {**FLIGHT, **WEATHER}]})
