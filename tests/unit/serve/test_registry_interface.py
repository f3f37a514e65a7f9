"""One registry interface, two stores: the same sequence gives the same answers on a folder and on S3.

The S3 store runs over real S3 protocol (moto's server mode on loopback, the minio SDK as client).
"""

import json
import os
import uuid

import pytest

from components import model_files, registry
from components.object_store import S3Registry


@pytest.fixture(params=["local", "s3"])
def store_uri(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "registry")
    request.getfixturevalue("env")
    return f"s3://models-{uuid.uuid4().hex[:8]}/ct"


def test_every_store_keeps_the_same_contract(store_uri, trained, other_model, tmp_path):
    store = registry.open_registry(store_uri)
    assert isinstance(store, S3Registry) == store_uri.startswith("s3://")
    name = "flights-delay"
    assert store.current(name) is None and store.versions(name) == [] and store.history(name) == []
    with pytest.raises(ValueError, match="never been deployed"):
        store.rollback(name)
    first = store.publish(name, trained[0], {"metrics": {"auc": 0.7}, "run_id": "r1"})
    assert first["version"] == "v0001" and first["previous_version"] is None
    assert store.publish(name, trained[0], {})["unchanged"]  # the same bytes are not a new version
    with pytest.raises(ValueError, match="no previous version"):
        store.rollback(name)
    second = store.publish(name, other_model, {"metrics": {"auc": 0.72}, "run_id": "r2"})
    assert second["version"] == "v0002" and second["previous_version"] == "v0001"
    assert store.versions(name) == ["v0001", "v0002"]
    back = store.rollback(name)
    assert back["version"] == "v0001" and back["rolled_back_from"] == "v0002" and back["metrics"] == {"auc": 0.7}
    assert back["model_sha256"] == first["model_sha256"]
    assert store.current(name)["version"] == "v0001"
    with pytest.raises(ValueError, match="no version v0009"):
        store.rollback(name, "v0009")
    assert [(h["event"], h["version"]) for h in store.history(name)] == [
        ("deploy", "v0001"), ("deploy", "v0002"), ("rollback", "v0001")]
    local = store.download(name, "v0002", str(tmp_path / "copy"))
    assert open(model_files.model_path(local), "rb").read() == open(model_files.model_path(other_model), "rb").read()
    with open(os.path.join(local, registry.RELEASE)) as handle:
        assert json.load(handle)["run_id"] == "r2"
    cached = registry.local_copy(store, name, "v0002", str(tmp_path / "cache"))
    assert model_files.read_info(cached) == model_files.read_info(other_model)


def test_unknown_schemes_are_named():
    with pytest.raises(ValueError, match="expected a local folder"):
        registry.open_registry("gs://bucket/models")


def test_the_same_model_served_another_way_is_a_new_version(store_uri, trained, tmp_path):
    """Identity is the fitted model and how it is served: a new lookup block (or schema) over the same
    model.joblib is a new version; a new training note (hyperparameters, spec digest) is not."""
    import shutil

    store = registry.open_registry(store_uri)
    name = "flights-delay"
    assert store.publish(name, trained[0], {})["version"] == "v0001"
    noted = tmp_path / "noted"
    shutil.copytree(trained[0], noted)
    info = model_files.read_info(str(noted))
    model_files.write_info(str(noted), {**info, "dataset_spec_digest": "another"})
    assert store.publish(name, str(noted), {})["unchanged"]
    served = tmp_path / "served"
    shutil.copytree(trained[0], served)
    block = {"features": ["temp"], "defaults": {}, "views": [{"name": "v", "features": ["temp"], "entities": [
        {"name": "origin", "row": {"column": "origin"}}]}]}
    model_files.write_info(str(served), {**info, "lookup": block})
    assert store.publish(name, str(served), {})["version"] == "v0002"


def test_a_model_whose_lookup_block_predates_feature_views_is_refused_at_load(trained, tmp_path):
    import shutil

    from components.model_server.model import LoadedModel

    old = tmp_path / "old"
    shutil.copytree(trained[0], old)
    info = model_files.read_info(str(old))
    model_files.write_info(str(old), {**info, "lookup": {"view": "origin_weather", "features": ["temp"],
                                                         "keys": ["origin", "weather_hour"], "year": 2013}})
    with pytest.raises(ValueError, match="lookup block has no feature views .* train and deploy it again"):
        LoadedModel(str(old), "v0001")
