"""Spans read from S3 over the real protocol: moto's server mode on loopback, the minio SDK as client."""

import pandas as pd
import pytest
from s3_server import moto_server, use_endpoint

from components.dataset_spec import DatasetSpec
from components.extract.extract import extract_spans
from components.fingerprint.fingerprint import window_data_version
from components.kfp_io import ComponentError
from components.paths import REPO_ROOT
from pipelines.examples.flights import dataset
from pipelines.examples.flights.dataset import SPAN_FILE

FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint, source, monkeypatch):
    """The local test source uploaded to s3://flights/landing/<span>/flights.parquet."""
    client = use_endpoint(monkeypatch, s3_endpoint)
    if not client.bucket_exists("flights"):
        client.make_bucket("flights")
    for span_dir in sorted(source.iterdir()):
        client.fput_object("flights", f"landing/{span_dir.name}/{SPAN_FILE}", str(span_dir / SPAN_FILE))
    return "s3://flights/landing"


def test_extract_and_fingerprint_read_spans_from_s3(bucket, source, tmp_path):
    meta = extract_spans(bucket, ["2013-01", "2013-02"], str(tmp_path / "dataset"), FLIGHTS)
    local = extract_spans(str(source), ["2013-01", "2013-02"], str(tmp_path / "local"), FLIGHTS)
    assert meta["rows_per_span"] == local["rows_per_span"] and meta["data_hash"] == local["data_hash"]
    frame = pd.read_parquet(tmp_path / "dataset" / dataset.span_file("2013-02"))
    assert (frame[dataset.SPAN_COLUMN] == "2013-02").all()
    assert window_data_version(bucket, "2013-01:2013-03", "2013-04", FLIGHTS) == \
        window_data_version(str(source), "2013-01:2013-03", "2013-04", FLIGHTS)


def test_missing_span_on_s3_is_named(bucket, tmp_path):
    with pytest.raises(ComponentError, match="2013-11.*not found in source s3://flights/landing"):
        extract_spans(bucket, ["2013-11"], str(tmp_path / "x"), FLIGHTS)


def test_baseline_on_s3_is_downloaded(s3_endpoint, monkeypatch, tmp_path):
    from components.resolve_baseline.resolve import materialize

    client = use_endpoint(monkeypatch, s3_endpoint)
    if not client.bucket_exists("models"):
        client.make_bucket("models")
    for name, data in {"model.joblib": b"model-bytes", "model.json": b"{}"}.items():
        path = tmp_path / name
        path.write_bytes(data)
        client.fput_object("models", f"ct/flights-delay/versions/v0003/{name}", str(path))
    pointer = {"version": "v0003", "model_dir": "s3://models/ct/flights-delay/versions/v0003"}
    meta = materialize(pointer, str(tmp_path / "baseline"))
    assert meta["found"] and meta["source_dir"].startswith("s3://")
    assert (tmp_path / "baseline" / "model.joblib").read_bytes() == b"model-bytes"


def test_production_pointer_is_read_from_an_s3_registry(s3_endpoint, monkeypatch, tmp_path):
    import json

    from components.registry import production_version
    from components.resolve_baseline.resolve import resolve_from_registry

    client = use_endpoint(monkeypatch, s3_endpoint)
    if not client.bucket_exists("registry"):
        client.make_bucket("registry")
    assert production_version("s3://registry/ct", "flights-delay") == "none"
    pointer = {"version": "v0002", "model_dir": "s3://registry/ct/flights-delay/versions/v0002",
               "deployed_at": "2013-05-01T00:00:00Z", "metrics": {"auc": 0.7}}
    (tmp_path / "current.json").write_text(json.dumps(pointer))
    client.fput_object("registry", "ct/flights-delay/current.json", str(tmp_path / "current.json"))
    assert production_version("s3://registry/ct", "flights-delay") == "v0002@2013-05-01T00:00:00Z"
    assert resolve_from_registry("s3://registry/ct", "flights-delay")["version"] == "v0002"
