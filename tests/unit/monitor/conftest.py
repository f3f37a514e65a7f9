import json

import pytest

from components import registry
from components.model_server.payload_logger import REQUEST_TYPE, RESPONSE_TYPE, to_binary_event
from pipelines.examples.flights import dataset


def flights(rows, seed=0, temp_shift=0.0, carriers=("UA", "EV", "DL")):
    """Synthetic feature rows shaped like the flights data."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(50, 10, rows) for name in dataset.NUMERIC_FEATURES})
    frame["temp"] = rng.normal(40 + temp_shift, 8, rows)
    frame["carrier"] = rng.choice(list(carriers), rows)
    frame["origin"] = rng.choice(["EWR", "JFK", "LGA"], rows)
    frame["dest"] = rng.choice(["ORD", "ATL", "LAX"], rows)
    return frame[dataset.FEATURES]


def event(kind, event_id, body):
    """(headers, data) of a payload-logger CloudEvent, exactly as the model server sends it."""
    return to_binary_event(REQUEST_TYPE if kind == "request" else RESPONSE_TYPE, event_id, body,
                           "http://localhost:8080/", "flights-delay")


def log_frame(client, frame, probabilities, prefix, version="v0001", batch=50):
    """Sends a frame as V1 requests and their responses through the monitor's HTTP app."""
    ids = []
    records = json.loads(frame.to_json(orient="records"))
    for start in range(0, len(records), batch):
        event_id = f"{prefix}-{start}"
        chunk = records[start:start + batch]
        probs = [float(p) for p in probabilities[start:start + batch]]
        for kind, body in (("request", {"instances": chunk}),
                           ("response", {"predictions": [int(p >= 0.5) for p in probs], "probabilities": probs,
                                         "model_version": version})):
            headers, data = event(kind, event_id, body)
            answer = client.post("/", headers=headers, content=data)
            assert answer.status_code == 202, answer.text
        ids.extend((event_id, i) for i in range(len(chunk)))
    return ids


@pytest.fixture(scope="session")
def s3():
    """A real S3 endpoint on loopback: moto in server mode."""
    from s3_server import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["local registry", "s3 registry"])
def registry_dir(request, tmp_path, monkeypatch):
    """A registry (a folder, or s3:// over real S3 protocol) with one published model version whose
    training sample is ``flights(2000)``."""
    import uuid

    from components import model_files

    model_dir = tmp_path / "candidate"
    model_dir.mkdir()
    (model_dir / model_files.MODEL_FILE).write_bytes(b"not needed by the monitor")
    model_files.write_info(str(model_dir), {"features": dataset.FEATURES})
    flights(2000, seed=1).to_parquet(model_files.reference_path(str(model_dir)), index=False)
    root = str(tmp_path / "registry")
    if request.param == "s3 registry":
        from s3_server import use_endpoint

        use_endpoint(monkeypatch, request.getfixturevalue("s3"))
        root = f"s3://models-{uuid.uuid4().hex[:8]}/ct"
    registry.publish(root, "flights-delay", str(model_dir), {"metrics": {"auc": 0.80}})
    return root


def publish_reference(root, spec, rng, metrics, rows=500):
    """Publishes a model version of ``spec`` with a synthetic training sample (its features) and blessed metrics;
    returns the sample."""
    import pandas as pd

    from components import model_files

    model_dir = root.parent / "candidate-model"
    model_dir.mkdir(parents=True)
    (model_dir / model_files.MODEL_FILE).write_bytes(b"not needed by the monitor")
    model_files.write_info(str(model_dir), {"features": spec.features})
    sample = pd.DataFrame({name: rng.uniform(0, 10, rows) for name in spec.numeric})
    for name in spec.categorical:
        sample[name] = rng.choice(["A", "B", "C"], rows)
    sample = sample[spec.features]
    sample.to_parquet(model_files.reference_path(str(model_dir)), index=False)
    registry.publish(str(root), spec.model_name, str(model_dir), {"metrics": metrics})
    return sample
