"""Feast's feature server, started as the local pipeline starts it, asked as serving asks it (HTTP)."""

import os

import numpy as np
import pandas as pd
import pytest

from components.dataset_spec import DatasetSpec
from components.feature_lookup import FeatureLookup, FeatureServerError
from components.feature_store import offline, server
from components.feature_store.materialization import materialize_new
from components.paths import REPO_ROOT
from components.processes import free_port, stop_process
from pipelines.examples.flights import dataset

FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")
VIEW = FLIGHTS.feature_views[0]


def _lookup(url, origins, hours, timeout=2.0):
    return FeatureLookup(url, timeout=timeout).lookup(VIEW.name, VIEW.features,
                                                      {"origin": list(origins), dataset.WEATHER_HOUR: list(hours)})


@pytest.fixture()
def feature_server(source, repo):
    materialize_new(str(source), repo, FLIGHTS)
    url = f"http://127.0.0.1:{free_port()}"
    state = server.ensure_serving(repo, url)
    yield url
    stop_process(state["pid"])


def test_the_served_features_are_the_offline_ones_bit_for_bit(feature_server, repo):
    readings = offline.read_spans(repo, VIEW, ["2013-02", "2013-03"]).sample(500, random_state=0)
    values, found = _lookup(feature_server, readings["origin"].tolist(),
                                                          readings[dataset.WEATHER_HOUR].tolist())
    assert all(found)
    for name in dataset.WEATHER_FEATURES:
        served = np.array([np.nan if v is None else v for v in values[name]], dtype=np.float64)
        stored = readings[name].to_numpy(dtype=np.float64)
        assert np.array_equal(np.isnan(served), np.isnan(stored)), name
        assert np.array_equal(served[~np.isnan(served)].view(np.int64), stored[~np.isnan(stored)].view(np.int64)), name


def test_a_key_the_store_does_not_hold_is_reported_not_found(feature_server):
    values, found = _lookup(feature_server, ["EWR", "BOS", "EWR"],
                                                         ["2013-02-10T12", "2013-02-10T12", "2014-02-10T12"])
    assert found == [True, False, False]
    assert values["temp"][1] is None and values["temp"][0] is not None


def test_a_second_start_keeps_the_running_server_and_a_foreign_one_is_refused(feature_server, repo, tmp_path):
    assert server.ensure_serving(repo, feature_server)["started"] is False
    with pytest.raises(RuntimeError, match="answers, but not as this repository's feature server"):
        server.ensure_serving(str(tmp_path / "other"), feature_server)


def test_an_unreachable_feature_server_is_a_clear_error():
    with pytest.raises(FeatureServerError, match=r"feature server http://127.0.0.1:\d+ cannot be reached"):
        _lookup(f"http://127.0.0.1:{free_port()}", ["EWR"], ["2013-02-10T12"], timeout=0.5)


def test_an_hour_without_a_reading_is_found_with_missing_values_as_training_saw_it(source, repo):
    from pipelines.examples.flights.dataset import WEATHER_FILE

    path = source / "2013-02" / WEATHER_FILE
    weather = pd.read_parquet(path)
    gap = (weather["origin"] == "LGA") & (weather["day"] == 14) & (weather["hour"] == 9)
    assert gap.sum() == 1
    weather[~gap].to_parquet(path, index=False)
    materialize_new(str(source), repo, FLIGHTS)
    url = f"http://127.0.0.1:{free_port()}"
    state = server.ensure_serving(repo, url)
    try:
        values, found = _lookup(url, ["LGA", "LGA", "LGA"], ["2013-02-14T09", "2013-02-14T10",
                                                                          "2013-04-01T00"])
    finally:
        stop_process(state["pid"])
    assert found == [True, True, False]
    assert all(values[name][0] is None for name in dataset.WEATHER_FEATURES) and values["temp"][1] is not None


def test_the_cluster_runs_the_feature_server_with_the_local_options():
    import os

    import yaml

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    with open(os.path.join(root, "manifests", "base", "feature-store.yaml"), encoding="utf-8") as handle:
        deployment = next(d for d in yaml.safe_load_all(handle) if d["kind"] == "Deployment"
                          and d["metadata"]["name"] == "ct-feature-server")
    command = deployment["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert " ".join(["serve", *server.serve_options("0.0.0.0", 6566)]) in command


def test_the_registry_is_replaced_whole_so_a_reader_never_sees_half_of_it(source, repo):
    """The local server refreshes the registry while steps write it: Feast's own file store rewrites it in place."""
    from feast.infra.registry.file import FileRegistryStore
    from feast.repo_config import RegistryConfig

    from components.feature_store import repo as feature_repo
    from components.feature_store.atomic_registry import AtomicFileRegistryStore

    feature_repo.open_store(repo, FLIGHTS)
    path = os.path.join(repo, "registry.db")
    config = RegistryConfig(path=path)
    for store_class, replaced in ((AtomicFileRegistryStore, True), (FileRegistryStore, False)):
        proto = store_class(config, None).get_registry_proto()
        with open(path, "rb") as reader:  # a reader that opened the file before the write
            before = reader.read()
            reader.seek(0)
            store_class(config, None).update_registry_proto(proto)
            assert (reader.read() == before) is replaced, store_class.__name__
    with open(os.path.join(repo, "feature_store.yaml"), encoding="utf-8") as handle:
        assert "AtomicFileRegistryStore" in handle.read()  # the embedded repository uses it


def test_materialize_starts_the_server_beside_the_materialization_and_a_broken_feed_leaves_none(source, repo):
    """Beside it once the registry exists (a join applied the definitions), after it on a new repository."""
    import os as _os

    from components.kfp_io import ComponentError
    from components.materialize.materialize import materialize_and_serve

    url = f"http://127.0.0.1:{free_port()}"
    metadata = materialize_and_serve(str(source), repo, "local", url, FLIGHTS)
    state = server.read_state(repo)
    try:
        assert metadata["spans"] == ["2013-02", "2013-03"] and state["url"] == url
        assert _lookup(url, ["EWR"], ["2013-02-10T12"])[1] == [True]
    finally:
        server.stop(repo)
    # The registry is there now: the server starts before the materialization, which has nothing new.
    url = f"http://127.0.0.1:{free_port()}"
    try:
        assert materialize_and_serve(str(source), repo, "local", url, FLIGHTS)["spans"] == []
        assert _lookup(url, ["EWR"], ["2013-02-10T12"])[1] == [True]
    finally:
        server.stop(repo)
    weather = pd.read_parquet(source / "2013-03" / dataset.WEATHER_FILE)
    weather.assign(temp=weather["temp"] + 459.67).to_parquet(source / "2013-03" / dataset.WEATHER_FILE, index=False)
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ComponentError, match="nothing was materialized"):
        materialize_and_serve(str(source), repo, "local", url, FLIGHTS)
    assert not _os.path.exists(_os.path.join(repo, server.STATE_FILE))
    with pytest.raises(FeatureServerError, match="cannot be reached"):
        _lookup(url, ["EWR"], ["2013-02-10T12"], timeout=0.5)


STEP = """
import json, sys
import feast  # what the warm feature runtime imports for the materialize step
from components.feature_store import server
repo, url = sys.argv[1], sys.argv[2]
handle = server.start_serving(repo, url, fork=True)
state = server.wait_serving(handle)
print(json.dumps({"kind": type(handle["process"]).__name__, "pid": state["pid"]}))
"""


def test_the_materialize_step_forks_feast_serve_from_itself_when_feast_is_imported(source, repo):
    """Forked in a child interpreter of the test, as the step would be: never from pytest's own process."""
    import json
    import subprocess
    import sys

    from components.paths import REPO_ROOT

    materialize_new(str(source), repo, FLIGHTS)
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([sys.executable, "-c", STEP, repo, url], capture_output=True, text=True, timeout=120,
                            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    try:
        assert answer["kind"] == "ForkedProcess"
        assert _lookup(url, ["EWR"], ["2013-02-10T12"])[1] == [True]  # it outlived the step that forked it
    finally:
        server.stop(repo)
    with pytest.raises(FeatureServerError, match="cannot be reached"):
        _lookup(url, ["EWR"], ["2013-02-10T12"], timeout=0.5)
