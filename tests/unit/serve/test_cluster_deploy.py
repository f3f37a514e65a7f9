"""InferenceService objects and the deploy client, against a FAKE Kubernetes API (no cluster runs here)."""

import pytest
from fake_kubernetes import FakeKubernetesApi

from components.deploy.cluster import ClusterDeployer, inference_service, schema_errors

IMAGE = "localhost/kfp-ct/serve:0.1.0"


@pytest.fixture
def fake_api():
    api = FakeKubernetesApi()
    yield api
    api.close()


def test_inference_service_is_valid_for_the_kserve_sdk_and_secure():
    obj = inference_service("flights-delay", "ml", "s3://models/flights-delay/v0002", IMAGE, "ct-serving", 10)
    assert schema_errors(obj) == []
    predictor = obj["spec"]["predictor"]
    container = predictor["containers"][0]
    assert predictor["canaryTrafficPercent"] == 10 and predictor["serviceAccountName"] == "ct-serving"
    assert {"name": "STORAGE_URI", "value": "s3://models/flights-delay/v0002"} in container["env"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"]["drop"] == ["ALL"] and security["readOnlyRootFilesystem"]
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert predictor["labels"]["kfp-ct/s3-client"] == "true"  # admitted to the object store


def test_the_predictor_we_write_passes_the_restricted_pod_security_standard():
    from pod_security import restricted_violations

    predictor = inference_service("flights-delay", "ml", "s3://models/v1", IMAGE, "ct-serving")["spec"]["predictor"]
    assert restricted_violations({"containers": predictor["containers"]}) == []


def test_schema_check_names_unknown_fields():
    obj = inference_service("m", "ml", "s3://b/v1", IMAGE, "sa")
    obj["spec"]["predictor"]["canaryTraficPercent"] = 5
    assert schema_errors(obj) == [".spec.predictor.canaryTraficPercent: not a field of V1beta1PredictorSpec"]
    with pytest.raises(ValueError, match="between 0 and 100"):
        inference_service("m", "ml", "s3://b/v1", IMAGE, "sa", canary_traffic_percent=150)


def test_first_deploy_creates_then_canary_promote_and_rollback_patch(fake_api):
    deployer = ClusterDeployer(fake_api.custom_objects_api(), "ml")
    deployer.deploy("flights-delay", "s3://models/flights-delay/v0001", IMAGE, "ct-serving", canary_traffic_percent=10)
    created = fake_api.objects[("ml", "flights-delay")]
    assert "canaryTrafficPercent" not in created["spec"]["predictor"]  # nothing to split with on creation
    assert [r[0] for r in fake_api.requests] == ["GET", "POST"]

    deployer.deploy("flights-delay", "s3://models/flights-delay/v0002", IMAGE, "ct-serving", canary_traffic_percent=10)
    canary = fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]
    assert canary["canaryTrafficPercent"] == 10
    assert canary["containers"][0]["env"][0]["value"].endswith("/v0002")
    assert fake_api.requests[-1][2] == "application/merge-patch+json"

    deployer.promote("flights-delay")
    assert "canaryTrafficPercent" not in fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]

    deployer.deploy("flights-delay", "s3://models/flights-delay/v0003", IMAGE, "ct-serving", canary_traffic_percent=20)
    deployer.rollback("flights-delay")
    assert fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert fake_api.objects[("ml", "flights-delay")]["metadata"]["generation"] == 5
    assert schema_errors(fake_api.objects[("ml", "flights-delay")] | {"metadata": {"name": "x"}}) == []


def test_get_missing_service_is_none_and_other_errors_raise(fake_api):
    from kubernetes.client.rest import ApiException

    deployer = ClusterDeployer(fake_api.custom_objects_api(), "ml")
    assert deployer.get("nope") is None
    with pytest.raises(ApiException):
        deployer.promote("nope")


def test_deploy_step_in_cluster_mode_publishes_to_s3_then_canaries(env, fake_api, trained, other_model):
    from components.deploy.deploy import deploy_to_cluster

    api = fake_api.custom_objects_api()
    common = dict(model_store_uri="s3://models/cluster", model_name="flights-delay", release={},
                  namespace="ml", service_account="ct-serving", image=IMAGE, api=api)
    deployed, details = deploy_to_cluster(trained[0], {"blessed": False}, {"blessed": True}, **common)
    assert not deployed and fake_api.requests == []  # refused: nothing sent anywhere
    deployed, details = deploy_to_cluster(trained[0], {"blessed": True}, {"blessed": True}, **common,
                                          canary_traffic_percent=10)
    assert deployed and details["pointer"]["model_dir"] == "s3://models/cluster/flights-delay/versions/v0001"
    service = fake_api.objects[("ml", "flights-delay")]
    assert service["spec"]["predictor"]["containers"][0]["env"][0]["value"].endswith("/v0001")
    deployed, details = deploy_to_cluster(other_model, {"blessed": True}, {"blessed": True}, **common,
                                          canary_traffic_percent=10)
    predictor = fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10 and predictor["containers"][0]["env"][0]["value"].endswith("/v0002")
