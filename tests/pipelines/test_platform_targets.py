"""The compiled spec per KFP backend: every task's platform config parses strictly with that backend's proto.

Each target's kubernetes_executor_config proto comes from the kfp-kubernetes release with the same
messages as the backend's in-tree copy (pipelines/ct/targets.py; `make platform-protos`). The backend's
compiler parses strictly (2.5.0: jsonpb, failure drops the pod labels; 2.15+: protojson, failure
fails the run): a field it does not know must not be there, and what our NetworkPolicies and
programs rely on (pod labels, env and volumes from ConfigMaps and Secrets) must.
"""

import functools
import os

import pytest

from pipelines.ct import targets
from pipelines.ct.compile import compile_to, pipelines
from pipelines.ct.spec import PIPELINE_YAML


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("targets")
    func, _ = pipelines()[0]
    out = {}
    for name in targets.TARGETS:
        path = str(folder / f"{name}.yaml")
        dropped = compile_to(func, path, "", name)
        out[name] = (open(path, encoding="utf-8").read(), dropped)
    return out


@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_every_task_s_platform_config_parses_strictly_on_its_backend(compiled, name):
    text, _ = compiled[name]
    assert targets.check(text, name) == {}
    configs = targets.executor_configs(text)
    assert len(configs) >= 10
    for executor, config in configs.items():
        labels = config["podMetadata"]["labels"]
        assert labels["kfp-ct/s3-client"] == "true", executor  # the NetworkPolicies' selector survives
    extract = configs["exec-extract"]
    assert extract["secretAsEnv"] and extract["configMapAsEnv"]
    has_security = all("securityContext" in config for config in configs.values())
    assert has_security == (name in ("kfp-2.16", "kfp-2.17"))


def test_what_each_backend_lacks_is_dropped_and_nothing_else(compiled):
    def fields(name):
        return {field for found in compiled[name][1].values() for field in found}

    assert fields("kubeflow-1.10") == {"securityContext", "configMapAsEnv.optional", "secretAsEnv.optional"}
    assert fields("kfp-2.15") == {"securityContext"}
    assert fields("kfp-2.16") == fields("kfp-2.17") == set()
    # Only the platform spec changes: the pipeline itself is the same for every backend.
    import yaml

    specs = {name: next(d for d in yaml.safe_load_all(text) if d and "root" in d)
             for name, (text, _) in compiled.items()}
    assert specs["kubeflow-1.10"] == specs["kfp-2.15"] == specs["kfp-2.17"]


def test_the_committed_yaml_is_the_default_target_s_and_older_backends_would_refuse_it():
    text = open(PIPELINE_YAML, encoding="utf-8").read()
    assert targets.check(text, targets.DEFAULT_TARGET) == {} and targets.check(text, "kfp-2.16") == {}
    refused = targets.check(text, "kfp-2.15")
    assert refused and all("securityContext" in error for error in refused.values())
    assert any("optional" in error for error in targets.check(text, "kubeflow-1.10").values())


def test_an_unsupported_backend_is_refused_at_compile_time(tmp_path):
    from pipelines.ct.compile import main

    with pytest.raises(SystemExit):
        main(["--target", "kfp-2.4", "--output", str(tmp_path / "x.yaml")])
    with pytest.raises(ValueError, match="target 'kfp-2.4' is not supported; supported: kubeflow-1.10"):
        targets.target("kfp-2.4")
    assert not os.path.exists(tmp_path / "x.yaml")


# ----- the pods each backend makes of the tasks, in each overlay's namespace (pipelines/ct/pods.py) -----

import shutil  # noqa: E402
import subprocess  # noqa: E402

import yaml  # noqa: E402

from pipelines.ct import pods  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: What README's deployment steps tell the user to fill before the first run (Secrets, never in git).
FILLED = {"ct-s3-credentials": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
          "ct-feature-store-credentials": {"REDIS_PASSWORD": "p"}}
#: Overlay -> the kustomization holding the namespace where its pipeline's pods run.
PIPELINE_NAMESPACE = {"kubeflow-platform": "kubeflow-platform", "prod": "prod",
                      "standalone-kfp": os.path.join("standalone-kfp", "pipeline-namespace")}


def _deployments():
    return [(overlay, name) for overlay in sorted(PIPELINE_NAMESPACE)
            for name in targets.TARGETS if overlay in targets.overlays_for(name)]


@functools.cache
def _pods(overlay, target_name, filled):
    """Task -> TaskPod of the pipeline compiled for the overlay on the target, in its pipeline namespace."""
    import tempfile

    chosen = targets.deployment(overlay, target_name)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "ct.yaml")
        compile_to(pipelines()[0][0], path, "", target_name, chosen.defaults)
        text = open(path, encoding="utf-8").read()
    rendered = subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, "manifests", "overlays",
                                                                    PIPELINE_NAMESPACE[overlay])],
                              capture_output=True, text=True, check=True).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    namespace = objects[0]["metadata"]["namespace"]
    if filled:
        for obj in objects:
            if obj["kind"] == "Secret" and obj["metadata"]["name"] in FILLED:
                obj["stringData"] = FILLED[obj["metadata"]["name"]]
    data = pods.namespace_objects(objects, namespace)
    spec = next(d for d in yaml.safe_load_all(text) if d and "root" in d)
    configs = targets.executor_configs(text)
    return {task: pods.executor_pod(configs[executor], target_name, data, namespace)
            for task, executor in pods.task_executors(spec).items()}


needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


@needs_kubectl
@pytest.mark.parametrize("overlay,target_name", _deployments())
def test_with_the_secrets_filled_as_readme_says_every_task_pod_starts(overlay, target_name):
    started = _pods(overlay, target_name, True)
    assert {task: pod.refusals for task, pod in started.items() if pod.refusals} == {}
    assert {"extract", "join-features", "train", "deploy"} <= set(started)
    for pod in started.values():  # the NetworkPolicies' selectors are on every pod
        assert pod.labels["app.kubernetes.io/part-of"] == "kfp-ct" and pod.labels["kfp-ct/s3-client"] == "true"
    assert started["join-features"].labels["kfp-ct/online-store-client"] == "true"


@needs_kubectl
@pytest.mark.parametrize("overlay,target_name", _deployments())
def test_before_the_secrets_are_filled_only_kfp_2_5_stops_the_pods(overlay, target_name):
    """KFP 2.5's driver makes every env reference required (its proto has no `optional`): the Secret
    templates as applied leave the pods in CreateContainerConfigError until filled (README step 3);
    2.15 and later keep `optional` and the variables are unset."""
    refused = {task: pod.refusals for task, pod in _pods(overlay, target_name, False).items() if pod.refusals}
    if target_name != "kubeflow-1.10":
        assert refused == {}
        return
    namespace = targets.deployment(overlay).defaults["namespace"]
    assert refused["extract"][0] == (f"CreateContainerConfigError: couldn't find key AWS_ACCESS_KEY_ID in Secret "
                                     f"{namespace}/ct-s3-credentials (env AWS_ACCESS_KEY_ID)")
    assert any("REDIS_PASSWORD" in r for r in refused["join-features"])
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    steps = readme[readme.index("**The Kubeflow platform (multi-user).**"):readme.index("**Standalone Kubeflow")]
    for secret, keys in FILLED.items():  # README's step 3 names every Secret and key a pod requires
        assert secret in steps and all(key in steps for key in keys), secret


@needs_kubectl
@pytest.mark.parametrize("overlay,target_name", _deployments())
def test_task_pods_pass_restricted_pod_security_from_kfp_2_16_only(overlay, target_name):
    """README: the compiler adds the security settings from 2.16 (security_context.go); 2.5's and 2.15's
    pods would be rejected by `restricted`, hence `baseline` enforced on the namespaces."""
    from pod_security import restricted_violations

    violations = {task: restricted_violations(pod.spec) for task, pod in _pods(overlay, target_name, True).items()}
    if target_name in ("kfp-2.16", "kfp-2.17"):
        assert all(v == [] for v in violations.values()), violations
        main = _pods(overlay, target_name, True)["train"].spec["containers"][1]
        assert main["securityContext"]["runAsUser"] == 10001 and main["securityContext"]["runAsNonRoot"]
    else:
        assert all(any("allowPrivilegeEscalation" in p for p in v) for v in violations.values())
