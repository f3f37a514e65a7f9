"""The S3 model registry over real S3 protocol: moto's server mode on loopback, the minio SDK as client."""

import pytest

from components import model_files
from components.object_store import S3Registry


def test_publish_versions_and_pointer_over_s3(env, trained, other_model, tmp_path):
    store = S3Registry("s3://models/ct")
    assert store.current("flights-delay") is None and store.versions("flights-delay") == []
    first = store.publish("flights-delay", trained[0], {"metrics": {"auc": 0.7}, "run_id": "r1"})
    assert first["version"] == "v0001" and first["model_dir"] == "s3://models/ct/flights-delay/versions/v0001"
    assert store.publish("flights-delay", trained[0], {})["unchanged"]
    second = store.publish("flights-delay", other_model, {"run_id": "r2"})
    assert second["version"] == "v0002" and second["previous_version"] == "v0001"
    assert store.current("flights-delay")["version"] == "v0002"
    assert store.versions("flights-delay") == ["v0001", "v0002"]
    local = store.download("flights-delay", "v0001", str(tmp_path / "v0001"))
    assert model_files.read_info(local) == model_files.read_info(trained[0])
    assert open(model_files.model_path(local), "rb").read() == open(model_files.model_path(trained[0]), "rb").read()


def test_bad_uris_and_missing_endpoint_are_named(monkeypatch):
    with pytest.raises(ValueError, match="not an s3://bucket/prefix"):
        S3Registry("/tmp/registry")
    monkeypatch.delenv("S3_ENDPOINT", raising=False)
    with pytest.raises(ValueError, match="S3_ENDPOINT"):
        S3Registry("s3://models/ct")


def test_credentials_can_come_from_the_mounted_secret(monkeypatch, tmp_path):
    from components.s3_settings import client_settings

    (tmp_path / "AWS_ACCESS_KEY_ID").write_text("from-file\n")
    (tmp_path / "AWS_SECRET_ACCESS_KEY").write_text("secret-from-file")
    monkeypatch.setenv("S3_ENDPOINT", "https://s3.example.invalid:443")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("S3_CREDENTIALS_DIR", str(tmp_path))
    settings = client_settings()
    assert settings == {"endpoint": "s3.example.invalid:443", "access_key": "from-file",
                        "secret_key": "secret-from-file", "secure": True}
    monkeypatch.delenv("S3_CREDENTIALS_DIR")
    assert client_settings()["access_key"] == "from-env"
