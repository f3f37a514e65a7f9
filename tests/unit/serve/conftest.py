import json

import pytest

from components.model_server import control


def _build_model(folder, max_iter=20, shuffled_labels=False):
    import numpy as np
    import pandas as pd

    from components.dataset_spec import DatasetSpec
    from components.paths import REPO_ROOT
    from components.schema_domains import read_domains
    from components.train.train import save, train
    from pipelines.examples.flights import dataset

    rng = np.random.default_rng(0)
    rows = 800
    # Values inside the data validation schema's domains: the server refuses others (its skew guard).
    domains = read_domains(dataset.CURATED_SCHEMA)
    frame = pd.DataFrame({name: rng.uniform(domains[name].minimum, min(domains[name].maximum,
                                                                    domains[name].minimum + 10), rows)
                          for name in dataset.NUMERIC_FEATURES})
    frame["carrier"] = rng.choice(["UA", "EV", "DL"], rows)
    frame["origin"] = rng.choice(["EWR", "JFK", "LGA"], rows)
    frame["dest"] = rng.choice(["ORD", "ATL"], rows)
    frame[dataset.LABEL] = ((frame["precip"] > 5) ^ (frame["carrier"] == "EV")).astype(int)
    spec = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")
    # Shuffled labels: a model that learned nothing, for experiments a candidate must lose.
    fitted_on = frame.assign(**{dataset.LABEL: rng.permutation(frame[dataset.LABEL].to_numpy())}) \
        if shuffled_labels else frame
    pipeline, _ = train(fitted_on, fitted_on.head(100), spec, {"max_iter": max_iter})
    save(pipeline, str(folder), spec, {})
    return frame


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """(model folder, frame it was trained on)."""
    folder = tmp_path_factory.mktemp("model")
    frame = _build_model(folder)
    return str(folder), frame


@pytest.fixture(scope="session")
def other_model(tmp_path_factory):
    """A second, different model folder."""
    folder = tmp_path_factory.mktemp("other-model")
    _build_model(folder, max_iter=25)
    return str(folder)


@pytest.fixture(scope="session")
def third_model(tmp_path_factory):
    """A third, different model folder."""
    folder = tmp_path_factory.mktemp("third")
    _build_model(str(folder), max_iter=7)
    return str(folder)


@pytest.fixture(scope="session")
def uninformed_model(tmp_path_factory):
    """A model trained on shuffled labels: no better than chance on the ground truth of ``trained``'s rule."""
    folder = tmp_path_factory.mktemp("uninformed")
    _build_model(str(folder), shuffled_labels=True)
    return str(folder)


@pytest.fixture(scope="session")
def samples(trained):
    """Serving samples as evaluate writes them: rows and the training runtime's probabilities."""
    from components.model_files import load_model as load
    from pipelines.examples.flights import dataset

    folder, frame = trained
    rows = frame.head(40)
    return {"instances": json.loads(rows[dataset.FEATURES].to_json(orient="records")),
            "probabilities": [float(p) for p in load(folder).predict_proba(rows[dataset.FEATURES])[:, 1]]}


@pytest.fixture(scope="session")
def server(trained, tmp_path_factory):
    """A real KServe model server process serving the model, published in a registry, on a free port."""
    from components import registry

    folder, _ = trained
    registry_uri = str(tmp_path_factory.mktemp("registry"))
    registry.publish(registry_uri, "flights-delay", folder, {})
    state_dir = str(tmp_path_factory.mktemp("serving"))
    state = control.ensure_serving(state_dir, registry_uri, "flights-delay", control.free_port())
    yield state
    control.stop(state_dir)


@pytest.fixture(scope="session")
def s3():
    """A real S3 endpoint on loopback: moto in server mode."""
    from s3_server import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def env(s3, monkeypatch):
    """S3 endpoint and test credentials in the environment, as the components read them."""
    from s3_server import use_endpoint

    use_endpoint(monkeypatch, s3)
