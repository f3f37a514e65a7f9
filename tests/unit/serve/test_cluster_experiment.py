"""An online experiment on a cluster: KServe's canary decided by the monitor's judge, against a FAKE
Kubernetes API and a FAKE KServe controller (fake_kubernetes.py; no cluster runs here), the registry on
real S3 protocol (moto), the monitor's real window store fed KServe payload-logger events.

The two revisions' predictors answer with their registry versions (release.json in the downloaded
folder), so the events of each arm are told apart as on a cluster.
"""

import functools
import time

import numpy as np
import pytest
from fake_kubernetes import FakeKubernetesApi

from components import registry
from components.dataset_spec import DatasetSpec
from components.deploy.deploy import deploy_to_cluster, release_experiment
from components.experiment.rules import ExperimentRules
from components.model_server.payload_logger import REQUEST_TYPE, RESPONSE_TYPE, to_binary_event
from components.monitor.events import parse_event
from components.monitor.experiment import ExperimentJudge
from components.monitor.metrics import MonitorMetrics
from components.monitor.store import WindowStore
from components.paths import REPO_ROOT

IMAGE = "localhost/kfp-ct/serve:0.1.0"
MODEL = "flights-delay"
SPEC = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")
BLESSED = ({"blessed": True}, {"blessed": True})
RULES = ExperimentRules(min_labelled_rows=100, min_class_rows=10, min_effect=0.05)


@pytest.fixture
def cluster(env, tmp_path, trained, other_model):
    """The FAKE API with v0001 in production and v0002 a 50 % Knative canary; yields (api, registry URI, judge)."""
    import uuid

    api = FakeKubernetesApi()
    uri = f"s3://models/experiment-{uuid.uuid4().hex[:8]}"
    common = dict(model_store_uri=uri, model_name=MODEL, release={}, namespace="ml", service_account="ct-serving",
                  image=IMAGE, api=api.custom_objects_api(), poll_seconds=0.05, deployment_mode="Knative")
    assert deploy_to_cluster(trained[0], *BLESSED, **common)[0]
    deployed, details = deploy_to_cluster(other_model, *BLESSED, **common, canary_traffic_percent=50)
    assert deployed and details["canary"]
    refused, why = deploy_to_cluster(trained[0], *BLESSED, **common, canary_traffic_percent=50)
    assert not refused and "v0002 is a canary" in why["reasons"][0]  # one experiment at a time
    store = WindowStore(str(tmp_path / "monitor"), SPEC.features, SPEC.task)
    judge = ExperimentJudge(str(tmp_path / "monitor"), registry.open_registry(uri), SPEC, store, MonitorMetrics(),
                            rules=RULES, registry_uri=uri,
                            cluster_release=functools.partial(release_experiment, api=api.custom_objects_api(),
                                                              poll_seconds=0.05))
    yield api, uri, judge
    api.close()


def _serve(judge, candidate_better: bool):
    """Both revisions' payload loggers post events; ground truth arrives for all of them."""
    rng = np.random.default_rng(5)
    now, truth = time.time(), []
    instances = [{name: 1.0 for name in SPEC.features}]
    for request in range(60):
        version = "v0002" if request % 2 else "v0001"
        labels = (rng.random(10) < 0.3).astype(int)
        informed = (version == "v0002") == candidate_better
        scores = (0.4 * labels + 0.6 * rng.random(10)) if informed else rng.random(10)
        for kind, body in (("request", {"instances": instances * 10}),
                           ("response", {"probabilities": scores.tolist(), "model_version": version})):
            # KServe's logger names no version on the request: the response's model_version does.
            headers, data = to_binary_event(REQUEST_TYPE if kind == "request" else RESPONSE_TYPE, f"r{request}",
                                            body, "http://flights-delay-predictor/", MODEL, namespace="ml",
                                            at=now + request * 0.01)
            judge.store.add(parse_event(headers, data))
        truth += [{"request_id": f"r{request}", "index": i, "label": int(y)} for i, y in enumerate(labels)]
    judge.store.add_ground_truth(truth)


def test_a_better_canary_is_promoted_kserve_first_then_the_registry(cluster):
    api, uri, judge = cluster
    store = registry.open_registry(uri)
    assert store.canary(MODEL)["experiment"]["target"] == "kserve"
    _serve(judge, candidate_better=True)
    look = judge.look()
    assert look["outcome"] == "promote", look["reason"]
    # Requests without a version (KServe's logger) count for the version that answered them.
    candidate = look["statistics"]["arms"]["candidate"]
    assert candidate["requests"] == 30 and candidate["errors"] == 0
    predictor = api.objects[("ml", MODEL)]["spec"]["predictor"]
    assert "canaryTrafficPercent" not in predictor  # all traffic to the latest revision
    assert store.current(MODEL)["version"] == "v0002" and store.canary(MODEL) is None
    assert store.current(MODEL)["experiment"]["outcome"] == "promote"
    assert [h["event"] for h in store.history(MODEL)][-2:] == ["experiment_promote", "promoted"]
    patches = [body for method, _, _, body in api.requests if method == "PATCH"]
    assert patches[-1] == {"spec": {"predictor": {"canaryTrafficPercent": None}}}


def test_without_a_release_a_cluster_decision_changes_nothing_and_says_why(cluster):
    api, uri, judge = cluster
    judge.cluster_release = None  # the monitor's own runtime: no Kubernetes client
    _serve(judge, candidate_better=True)
    with pytest.raises(RuntimeError, match="make promote or make rollback TARGET=kserve"):
        judge.look()
    store = registry.open_registry(uri)
    assert store.current(MODEL)["version"] == "v0001" and store.canary(MODEL)["version"] == "v0002"
    assert api.objects[("ml", MODEL)]["spec"]["predictor"]["canaryTrafficPercent"] == 50


def test_a_worse_canary_is_rolled_back_kserve_first_production_untouched(cluster):
    api, uri, judge = cluster
    store = registry.open_registry(uri)
    _serve(judge, candidate_better=False)
    look = judge.look()
    assert look["outcome"] == "roll_back" and "worse" in look["reason"], look["reason"]
    assert api.objects[("ml", MODEL)]["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert store.current(MODEL)["version"] == "v0001" and store.canary(MODEL) is None
    assert [h["event"] for h in store.history(MODEL)][-1] == "experiment_rolled_back"
