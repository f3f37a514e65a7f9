"""``make promote`` / ``make rollback TARGET=kserve``: the release CLI against the FAKE Kubernetes API
and KServe controller (fake_kubernetes.py) and a real S3 protocol registry (moto)."""

import json
import uuid

import pytest
from fake_kubernetes import FakeKubernetesApi

from components import registry
from components.deploy import deploy, release
from components.deploy.deploy import deploy_to_cluster

IMAGE = "localhost/kfp-ct/serve:0.1.0"


@pytest.fixture
def fake_api(monkeypatch):
    api = FakeKubernetesApi()
    # What the CLI's in-cluster or kubeconfig client would be: the FAKE API's.
    monkeypatch.setattr(deploy, "cluster_api", lambda given=None: given or api.custom_objects_api())
    yield api
    api.close()


def test_promote_and_rollback_from_the_command_line(env, fake_api, trained, other_model, capsys):
    uri = f"s3://models/cli-{uuid.uuid4().hex[:8]}"
    common = dict(model_store_uri=uri, model_name="flights-delay", release={}, namespace="ml",
                  service_account="ct-serving", image=IMAGE, api=fake_api.custom_objects_api(),
                  deployment_mode="Knative", poll_seconds=0.05)
    args = ["--registry", uri, "--name", "flights-delay", "--namespace", "ml", "--deployment-mode", "Knative",
            "--timeout", "5"]
    assert release.main(["promote", *args]) == 1
    assert "no canary to promote" in capsys.readouterr().err
    deploy_to_cluster(trained[0], {"blessed": True}, {"blessed": True}, **common)
    deploy_to_cluster(other_model, {"blessed": True}, {"blessed": True}, **common, canary_traffic_percent=25)
    assert release.main(["promote", *args]) == 0
    assert json.loads(capsys.readouterr().out)["production"] == "v0002"
    assert release.main(["rollback", *args, "--image", IMAGE]) == 0
    assert json.loads(capsys.readouterr().out)["production"] == "v0001"
    assert registry.open_registry(uri).current("flights-delay")["rolled_back_from"] == "v0002"
