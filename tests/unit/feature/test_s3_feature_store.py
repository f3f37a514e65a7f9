"""The cluster's layout of the feature store over the real S3 protocol (moto's server on loopback):
registry and offline files on S3, spans read from S3. The online store stays SQLite here (no Redis)."""

import numpy as np
import pandas as pd
import pytest
from s3_server import moto_server, use_endpoint

from components.dataset_spec import DatasetSpec
from components.feature_store import offline
from components.feature_store import repo as feature_repo
from components.feature_store.materialization import materialize_new
from components.paths import REPO_ROOT
from pipelines.examples.flights import dataset
from pipelines.examples.flights.dataset import SPAN_FILE, WEATHER_FILE, join_on_hour

FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")
VIEW = FLIGHTS.feature_views[0]


@pytest.fixture()
def on_s3(landed, tmp_path, monkeypatch):
    """(source URI, repository) with the spans, the registry and the offline files in S3 buckets."""
    with moto_server() as endpoint:
        client = use_endpoint(monkeypatch, endpoint)
        for bucket in ("flights", "features"):
            client.make_bucket(bucket)
        for span_dir in sorted(landed.iterdir()):
            for name in (SPAN_FILE, WEATHER_FILE):
                client.fput_object("flights", f"landing/{span_dir.name}/{name}", str(span_dir / name))
        repo = tmp_path / "repository"
        repo.mkdir()
        (repo / "feature_store.yaml").write_text(
            "project: kfp_ct\nprovider: local\nregistry: ${FEATURE_REGISTRY_URI}\n"
            "online_store:\n  type: sqlite\n  path: online.db\noffline_store:\n  type: file\n"
            "entity_key_serialization_version: 3\n")
        monkeypatch.setenv("FEATURE_REGISTRY_URI", "s3://features/registry.db")
        monkeypatch.setenv(feature_repo.OFFLINE_URI_ENV, "s3://features/offline")
        monkeypatch.delenv("FEAST_S3_ENDPOINT_URL", raising=False)
        yield "s3://flights/landing", str(repo), client


def test_join_and_materialization_with_registry_and_offline_files_on_s3(on_s3, landed):
    source, repo, client = on_s3
    synced = offline.sync_view(source, repo, FLIGHTS, VIEW)
    assert synced["written"] == ["2013-02", "2013-03"] and synced["offline_uri"] == "s3://features/offline/origin_weather"
    listed = {o.object_name for o in client.list_objects("features", prefix="offline/origin_weather/")}
    assert listed >= {f"offline/origin_weather/{name}"
                      for name in ("2013-02.parquet", "2013-03.parquet", "_synced.json")}
    store = feature_repo.open_store(repo, FLIGHTS)
    assert client.stat_object("features", "registry.db").size > 0  # Feast's registry, on S3 through boto3
    flights = pd.read_parquet(landed / "2013-03" / SPAN_FILE)
    joined = offline.join_view(store, flights, VIEW, FLIGHTS, offline.stored_keys(repo, VIEW))
    plain = join_on_hour(flights, pd.read_parquet(landed / "2013-03" / WEATHER_FILE))
    for name in dataset.WEATHER_FEATURES:
        assert np.array_equal(joined[name].to_numpy(), plain[name].to_numpy(), equal_nan=True), name
    result = materialize_new(source, repo, FLIGHTS)
    assert result["spans"] == ["2013-02", "2013-03"] and result["rows"] == 3 * (28 + 31) * 24
    online = store.get_online_features(features=feature_repo.feature_refs(VIEW),
                                       entity_rows=[{"origin": "EWR", dataset.WEATHER_HOUR: "2013-03-05T14"}]).to_dict()
    reading = plain[(plain["origin"] == "EWR") & (plain["day"] == 5) & (plain["hour"] == 14)].iloc[0]
    assert online["temp"] == [reading["temp"]]
