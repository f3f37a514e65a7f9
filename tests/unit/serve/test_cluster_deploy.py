"""InferenceService objects and the deploy client, against a FAKE Kubernetes API (no cluster runs here)."""

import json

import pytest
from fake_kubernetes import FakeKubernetesApi
from kserve_crd import RELEASES, crd, invalid, unknown_fields

from components import registry
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
    with pytest.raises(ValueError, match="Knative"):
        deployer.deploy("flights-delay", "s3://models/flights-delay/v0001", IMAGE, "ct-serving",
                        canary_traffic_percent=10)
    deployer.deploy("flights-delay", "s3://models/flights-delay/v0001", IMAGE, "ct-serving", canary_traffic_percent=10,
                    deployment_mode="Knative")
    created = fake_api.objects[("ml", "flights-delay")]
    assert "canaryTrafficPercent" not in created["spec"]["predictor"]  # nothing to split with on creation
    assert [r[0] for r in fake_api.requests] == ["GET", "POST"]

    deployer.deploy("flights-delay", "s3://models/flights-delay/v0002", IMAGE, "ct-serving", canary_traffic_percent=10,
                    deployment_mode="Knative")
    canary = fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]
    assert canary["canaryTrafficPercent"] == 10
    assert canary["containers"][0]["env"][0]["value"].endswith("/v0002")
    assert fake_api.requests[-1][2] == "application/merge-patch+json"

    deployer.promote("flights-delay")
    assert "canaryTrafficPercent" not in fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]

    deployer.deploy("flights-delay", "s3://models/flights-delay/v0003", IMAGE, "ct-serving", canary_traffic_percent=20,
                    deployment_mode="Knative")
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


@pytest.fixture
def uri():
    """A registry prefix of its own for each test (the S3 server lives for the session)."""
    import uuid

    return f"s3://models/cluster-{uuid.uuid4().hex[:8]}"


def _common(fake_api, uri, **extra):
    return dict(model_store_uri=uri, model_name="flights-delay", release={}, namespace="ml",
                service_account="ct-serving", image=IMAGE, api=fake_api.custom_objects_api(), poll_seconds=0.05,
                **extra)


BLESSED = ({"blessed": True}, {"blessed": True})


def test_a_canary_in_standard_mode_is_refused_before_anything_changes(env, fake_api, uri, trained):
    from components.deploy.deploy import deploy_to_cluster

    deployed, _ = deploy_to_cluster(trained[0], {"blessed": False}, {"blessed": True}, **_common(fake_api, uri))
    assert not deployed and fake_api.requests == []  # unblessed: nothing sent anywhere
    with pytest.raises(ValueError, match="needs KServe's Knative"):
        deploy_to_cluster(trained[0], *BLESSED, **_common(fake_api, uri), canary_traffic_percent=10,
                          deployment_mode="Standard")
    assert fake_api.requests == [] and registry.open_registry(uri).versions("flights-delay") == []


def test_knative_canary_lifecycle_moves_production_only_when_ready(env, fake_api, uri, trained, other_model,
                                                                  third_model):
    from components.deploy.deploy import deploy_to_cluster, promote_on_cluster, rollback_on_cluster

    store = registry.open_registry(uri)
    common = _common(fake_api, uri, deployment_mode="Knative")
    deployed, details = deploy_to_cluster(trained[0], *BLESSED, **common, canary_traffic_percent=10)
    assert deployed and not details["canary"]  # the first version takes all traffic
    assert store.current("flights-delay")["version"] == "v0001" and store.canary("flights-delay") is None
    service = fake_api.objects[("ml", "flights-delay")]
    # The default KServe is 0.15 (Kubeflow 1.10's): Knative mode is written with its name there.
    assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"

    deployed, details = deploy_to_cluster(other_model, *BLESSED, **common, canary_traffic_percent=10)
    assert deployed and details["canary"]
    predictor = fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10 and predictor["containers"][0]["env"][0]["value"].endswith("/v0002")
    assert store.current("flights-delay")["version"] == "v0001"  # a canary is not production
    assert store.canary("flights-delay")["version"] == "v0002"

    promoted = promote_on_cluster(uri, "flights-delay", "ml", api=common["api"], poll_seconds=0.05)
    assert promoted["version"] == "v0002" and store.current("flights-delay")["version"] == "v0002"
    assert store.canary("flights-delay") is None
    assert "canaryTrafficPercent" not in fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]

    deploy_to_cluster(third_model, *BLESSED, **common, canary_traffic_percent=20)
    now = rollback_on_cluster(uri, "flights-delay", "ml", IMAGE, "ct-serving", api=common["api"],
                              deployment_mode="Knative", poll_seconds=0.05)
    assert now["version"] == "v0002" and store.canary("flights-delay") is None
    assert fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert [h["event"] for h in store.history("flights-delay")] == [
        "deploy", "experiment_started", "promote", "promoted", "experiment_started", "canary_rolled_back"]


@pytest.mark.parametrize("mode, waited_for", [
    ("Knative", "predictor revision flights-delay-predictor-00002 is not the latest ready.*failed to load"),
    # KServe 0.15 reads only the Deployment's Available condition: the old pod keeps the service Ready=True
    # while the new ReplicaSet never becomes available. The Deployment is what says it.
    ("Standard", "Deployment flights-delay-predictor: 1 of 1 replicas updated, 1 available, 2 in all "
                 r"\(Ready=True\)"),
])
def test_a_version_that_never_gets_ready_leaves_production_alone(env, fake_api, uri, trained, other_model, mode,
                                                                 waited_for):
    from components.deploy.deploy import deploy_to_cluster

    store = registry.open_registry(uri)
    deploy_to_cluster(trained[0], *BLESSED, **_common(fake_api, uri, deployment_mode=mode))
    fake_api.never_ready.append("/v0002")
    with pytest.raises(TimeoutError, match=f"not Ready after 0 s: {waited_for}"):
        deploy_to_cluster(other_model, *BLESSED, **_common(fake_api, uri, deployment_mode=mode),
                          ready_timeout_seconds=0.2)
    assert store.current("flights-delay")["version"] == "v0001"


@pytest.mark.parametrize("kserve_version", ["0.15", "0.16"])
def test_readiness_follows_the_predictor_not_a_stale_ready_or_the_generation(env, uri, trained, other_model,
                                                                             kserve_version):
    """The first status after a change is the old one (Ready=True, old revision); observedGeneration is the
    Knative Service's: neither says the new version serves. Production moves only once it does."""
    from components.deploy.deploy import deploy_to_cluster

    api = FakeKubernetesApi(kserve_version)
    try:
        common = _common(api, uri, deployment_mode="Knative", kserve_version=kserve_version)
        deploy_to_cluster(trained[0], *BLESSED, **common)
        before = len(api.requests)
        deployed, details = deploy_to_cluster(other_model, *BLESSED, **common)
        service = api.objects[("ml", "flights-delay")]
        gets = [r for r in api.requests[before:] if r[0] == "GET" and r[1].endswith("/flights-delay")]
        assert deployed and details["inference_service"]["revision"] == "flights-delay-predictor-00002"
        assert len(gets) >= 4  # before, deploy's own read, the stale read (waited past), the ready one
        assert service["status"]["observedGeneration"] == 2 != service["metadata"]["generation"] + 1
        assert registry.open_registry(uri).current("flights-delay")["version"] == "v0002"
    finally:
        api.close()


def test_standard_mode_on_kserve_0_15_is_a_raw_deployment_not_the_cluster_default(env, fake_api, uri, trained):
    """Written as RawDeployment, 0.15 runs one Deployment; 'Standard' would have fallen back to Serverless."""
    from components.deploy.deploy import deploy_to_cluster

    deploy_to_cluster(trained[0], *BLESSED, **_common(fake_api, uri, deployment_mode="Standard"))
    assert fake_api.deployment("ml", "flights-delay-predictor") is not None
    assert fake_api.known_modes().get("Standard") is None  # what 0.15 would not have understood


def test_rollback_serves_the_previous_version_and_clearing_the_logger_removes_it(env, fake_api, uri, trained,
                                                                                 other_model):
    from components.deploy.deploy import deploy_to_cluster, rollback_on_cluster

    store = registry.open_registry(uri)
    deploy_to_cluster(trained[0], *BLESSED, **_common(fake_api, uri), logger_url="http://ct-monitor/")
    assert fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]["logger"]["url"] == "http://ct-monitor/"
    deploy_to_cluster(other_model, *BLESSED, **_common(fake_api, uri), logger_url="")
    assert "logger" not in fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]
    now = rollback_on_cluster(uri, "flights-delay", "ml", IMAGE, "ct-serving",
                              api=fake_api.custom_objects_api(), poll_seconds=0.05)
    assert now["version"] == "v0001" and store.current("flights-delay")["rolled_back_from"] == "v0002"
    env_value = fake_api.objects[("ml", "flights-delay")]["spec"]["predictor"]["containers"][0]["env"][0]["value"]
    assert env_value.endswith("/v0001")


@pytest.mark.parametrize("kserve_version, mode, written", [
    ("0.15", "Standard", "RawDeployment"), ("0.15", "RawDeployment", "RawDeployment"),
    ("0.15", "Knative", "Serverless"), ("0.14", "Serverless", "Serverless"),
    ("0.16", "RawDeployment", "Standard"), ("0.16", "Serverless", "Knative"), ("0.16.1", "Knative", "Knative"),
])
def test_the_mode_annotation_takes_the_name_the_cluster_s_kserve_understands(kserve_version, mode, written):
    """kserve 0.15's GetDeploymentMode knows Serverless/RawDeployment only and silently falls back to the
    cluster default for Standard or Knative; 0.16 renames them and its webhook refuses updates that keep an
    old name (pkg/controller/v1beta1/inferenceservice/utils/utils.go, inference_service_validation.go)."""
    from components.deploy.cluster import MODE_ANNOTATION

    obj = inference_service("m", "ml", "s3://b/v1", IMAGE, "sa", deployment_mode=mode, kserve_version=kserve_version)
    assert obj["metadata"]["annotations"][MODE_ANNOTATION] == written


def test_an_unsupported_kserve_or_mode_is_refused_and_a_canary_needs_revisions_in_either_spelling():
    from components.deploy.cluster import check_canary

    with pytest.raises(ValueError, match=r"kserve_version '0.13' is not supported \(supported: 0.14, 0.15, 0.16\)"):
        inference_service("m", "ml", "s3://b/v1", IMAGE, "sa", kserve_version="0.13")
    with pytest.raises(ValueError, match="deployment_mode must be one of"):
        inference_service("m", "ml", "s3://b/v1", IMAGE, "sa", deployment_mode="ModelMesh")
    for raw in ("Standard", "RawDeployment"):
        with pytest.raises(ValueError, match="needs KServe's Knative"):
            check_canary(raw, 10)
    for knative in ("Knative", "Serverless"):
        check_canary(knative, 10)


# ----- the InferenceService against the CRD of each supported KServe release (kserve_crd.py) -----

def test_the_kept_crds_are_the_upstream_releases_they_name():
    from components.deploy.cluster import KSERVE_MODE_NAMES

    assert set(RELEASES) == set(KSERVE_MODE_NAMES)  # every KServe version deploy supports has its CRD
    for version, tag in RELEASES.items():
        origin = crd(version)["origin"]
        assert origin["repository"] == "kserve/kserve" and origin["tag"] == tag
        assert origin["path"] == "config/crd/full/serving.kserve.io_inferenceservices.yaml"
        assert len(origin["commit"]) == len(origin["blob"]) == 40
        predictor = crd(version)["schema"]["properties"]["spec"]["properties"]["predictor"]
        assert predictor["properties"]["logger"]["properties"]["mode"]["enum"] == ["all", "request", "response"]
    assert "storageUris" in crd("0.16")["schema"]["properties"]["spec"]["properties"]["predictor"]["properties"]
    assert "storageUris" not in crd("0.15")["schema"]["properties"]["spec"]["properties"]["predictor"]["properties"]


@pytest.mark.parametrize("version", sorted(RELEASES))
@pytest.mark.parametrize("mode", ["Standard", "Knative"])
@pytest.mark.parametrize("canary,logger", [(None, ""), (10, "http://ct-monitor.ml.svc.cluster.local/")])
def test_every_inference_service_we_write_is_valid_for_the_crd_of_its_kserve(version, mode, canary, logger):
    obj = inference_service("flights-delay", "ml", "s3://models/flights-delay/v0002", IMAGE, "ct-serving",
                            canary, logger, mode, version)
    assert invalid(obj, version) == []
    assert unknown_fields(obj, version) == []


def test_the_crd_check_catches_what_the_sdk_models_cannot():
    """The kserve SDK models carry no enums, no required fields and no patterns; the CRD does."""
    obj = inference_service("flights-delay", "ml", "s3://models/v1", IMAGE, "ct-serving", None,
                            "http://ct-monitor/", "Standard", "0.15")
    obj["spec"]["predictor"]["logger"]["mode"] = "everything"
    del obj["spec"]["predictor"]["containers"][0]["name"]
    obj["spec"]["predictor"]["containers"][0]["resources"]["limits"]["memory"] = "one gig"
    assert schema_errors(obj) == []  # the SDK walk sees nothing wrong
    problems = "\n".join(invalid(obj, "0.15"))
    assert ".spec.predictor.logger.mode: 'everything' is not one of ['all', 'request', 'response']" in problems
    assert ".spec.predictor.containers.0: 'name' is a required property" in problems
    assert ".spec.predictor.containers.0.resources.limits.memory" in problems
    obj = inference_service("flights-delay", "ml", "s3://models/v1", IMAGE, "ct-serving")
    obj["spec"]["predictor"]["canaryTraficPercent"] = 10
    assert unknown_fields(obj, "0.15") == [".spec.predictor.canaryTraficPercent"]


@pytest.mark.parametrize("version", ["0.15", "0.16"])
def test_the_deploy_client_asks_for_strict_field_validation_and_a_refused_write_names_the_field(version):
    from kubernetes.client.rest import ApiException

    api = FakeKubernetesApi(kserve_version=version)
    try:
        deployer = ClusterDeployer(api.custom_objects_api(), "ml", kserve_version=version)
        deployer.deploy("flights-delay", "s3://models/flights-delay/v0001", IMAGE, "ct-serving")
        assert all("fieldValidation=Strict" in path for method, path, *_ in api.requests if method != "GET")
        assert api.warnings == []
        with pytest.raises(ApiException) as refused:  # a field this KServe does not know: refused, not pruned
            deployer._patch("flights-delay", {"spec": {"predictor": {"canaryTraficPercent": 10}}})
        message = json.loads(refused.value.body)["message"]
        assert refused.value.status == 400 and message == ('strict decoding error: unknown field '
                                                           '"spec.predictor.canaryTraficPercent"')
        with pytest.raises(ApiException) as invalid_value:
            deployer._patch("flights-delay", {"spec": {"predictor": {"logger": {"mode": "everything"}}}})
        assert invalid_value.value.status == 422 and "everything" in invalid_value.value.body
    finally:
        api.close()
