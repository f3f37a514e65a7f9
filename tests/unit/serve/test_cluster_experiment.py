"""An online experiment on a cluster: KServe's canary decided by the monitor's judge and applied by the
releaser, against a FAKE Kubernetes API and a FAKE KServe controller (fake_kubernetes.py; no cluster runs
here), the registry on real S3 protocol (moto), the monitor's real window store fed KServe payload-logger
events. The judge holds no Kubernetes client (the monitor has no rights on a cluster): it records the
decision in the registry, and only the releaser moves KServe's traffic.

The two revisions' predictors answer with their registry versions (release.json in the downloaded
folder), so the events of each arm are told apart as on a cluster.
"""

import json
import time

import numpy as np
import pytest
from fake_kubernetes import FakeKubernetesApi

from components import registry
from components.dataset_spec import DatasetSpec
from components.deploy.deploy import deploy_to_cluster, release_decided_experiment
from components.deploy.release import apply_decisions, health
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
                            rules=RULES)
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


def _decided_and_untouched(api, uri, judge, outcome: str) -> dict:
    """The judge's look decides; the registry records it; nothing moves until the releaser acts."""
    look = judge.look()
    assert look["outcome"] == outcome and look["release"] == "pending", look["reason"]
    store = registry.open_registry(uri)
    decision = store.canary(MODEL)["experiment"]["decision"]
    assert decision["outcome"] == outcome and decision["reason"] == look["reason"]
    assert store.current(MODEL)["version"] == "v0001" and store.canary(MODEL)["version"] == "v0002"
    assert api.objects[("ml", MODEL)]["spec"]["predictor"]["canaryTrafficPercent"] == 50
    assert [h["event"] for h in store.history(MODEL)][-1] == "experiment_decided"
    # Looks until the release: the decision stands, no second one is taken.
    assert judge.look() == {"running": False, "model_name": MODEL, "candidate_version": "v0002",
                            "release": "pending", **decision}
    assert len(judge.decisions()) == 1
    return look


def test_a_better_canary_is_promoted_by_the_releaser_kserve_first_then_the_registry(cluster):
    api, uri, judge = cluster
    store = registry.open_registry(uri)
    assert store.canary(MODEL)["experiment"]["target"] == "kserve"
    _serve(judge, candidate_better=True)
    look = _decided_and_untouched(api, uri, judge, "promote")
    # Requests without a version (KServe's logger) count for the version that answered them.
    candidate = look["statistics"]["arms"]["candidate"]
    assert candidate["requests"] == 30 and candidate["errors"] == 0
    applied = release_decided_experiment(uri, MODEL, "ml", api.custom_objects_api(), poll_seconds=0.05)
    assert applied == {"model_name": MODEL, "candidate_version": "v0002", "outcome": "promote", "production": "v0002"}
    predictor = api.objects[("ml", MODEL)]["spec"]["predictor"]
    assert "canaryTrafficPercent" not in predictor  # all traffic to the latest revision
    assert store.current(MODEL)["version"] == "v0002" and store.canary(MODEL) is None
    assert store.current(MODEL)["experiment"]["outcome"] == "promote"
    assert [h["event"] for h in store.history(MODEL)][-3:] == ["experiment_decided", "experiment_promote", "promoted"]
    patches = [body for method, _, _, body in api.requests if method == "PATCH"]
    assert patches[-1] == {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    assert release_decided_experiment(uri, MODEL, "ml", api.custom_objects_api()) is None  # nothing waits
    assert judge.look() == {"running": False}


def test_a_worse_canary_is_rolled_back_by_the_releaser_production_untouched(cluster):
    api, uri, judge = cluster
    store = registry.open_registry(uri)
    _serve(judge, candidate_better=False)
    look = _decided_and_untouched(api, uri, judge, "roll_back")
    assert "worse" in look["reason"]
    patches_before = sum(method == "PATCH" for method, _, _, _ in api.requests)
    applied = release_decided_experiment(uri, MODEL, "ml", api.custom_objects_api(), poll_seconds=0.05)
    assert applied["outcome"] == "roll_back" and applied["production"] == "v0001"
    patches = [body for method, _, _, body in api.requests if method == "PATCH"]
    # Only the canary's share changes: nothing of the registry's record reaches the InferenceService's spec.
    assert patches[patches_before:] == [{"spec": {"predictor": {"canaryTrafficPercent": 0}}}]
    assert store.current(MODEL)["version"] == "v0001" and store.canary(MODEL) is None
    assert [h["event"] for h in store.history(MODEL)][-1] == "experiment_rolled_back"


def test_a_releaser_of_another_namespace_changes_nothing_and_says_why(cluster, tmp_path, capsys):
    api, uri, judge = cluster
    _serve(judge, candidate_better=True)
    _decided_and_untouched(api, uri, judge, "promote")
    heartbeat = str(tmp_path / "heartbeat")
    sleeps = []
    status = apply_decisions(uri, MODEL, "other", watch=True, poll_seconds=7, heartbeat=heartbeat,
                             api=api.custom_objects_api(), sleep=sleeps.append, polls=2)
    assert status == 1 and sleeps == [7]  # two polls, both failed and reported, the loop alive
    assert capsys.readouterr().err.count("experiment runs in namespace 'ml', this releaser acts in 'other'") == 2
    assert health(heartbeat, 60) == 0 and health(str(tmp_path / "none"), 60) == 1
    store = registry.open_registry(uri)
    assert store.current(MODEL)["version"] == "v0001" and store.canary(MODEL)["experiment"]["decision"]
    assert api.objects[("ml", MODEL)]["spec"]["predictor"]["canaryTrafficPercent"] == 50
    # The releaser of the right namespace applies it.
    assert apply_decisions(uri, MODEL, "ml", api=api.custom_objects_api(), ready_poll_seconds=0.05) == 0
    assert json.loads(capsys.readouterr().out.split("[releaser] ", 1)[1])["production"] == "v0002"
    assert store.current(MODEL)["version"] == "v0002"


def test_the_releaser_command_names_what_it_lacks(cluster, tmp_path, monkeypatch, capsys):
    from components.deploy.release import main

    api, uri, judge = cluster
    with pytest.raises(SystemExit) as exit_info:
        main(["apply-decisions", "--registry", uri])
    assert exit_info.value.code == 2
    assert "apply-decisions needs --namespace, --name or --spec" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["health"])
    assert "health needs --heartbeat" in capsys.readouterr().err
    # Outside a cluster and without a kubeconfig: nothing waits, so no API is needed ...
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    spec = f"{REPO_ROOT}/pipelines/examples/flights/spec.toml"
    command = ["apply-decisions", "--registry", uri, "--namespace", "ml", "--spec", spec]
    assert main(command) == 0
    # ... then a decision waits: the poll fails, says why, changes nothing.
    _serve(judge, candidate_better=True)
    _decided_and_untouched(api, uri, judge, "promote")
    capsys.readouterr()
    assert main(command) == 1
    out, err = capsys.readouterr()
    assert f"applying {MODEL}'s online experiment decisions from {uri} in namespace ml" in out
    assert "ConfigException" in err
    assert registry.open_registry(uri).canary(MODEL)["version"] == "v0002"
