"""The compiled spec per KFP backend: every task's platform config parses strictly with that backend's proto.

Each target's kubernetes_executor_config proto comes from the kfp-kubernetes release with the same
messages as the backend's in-tree copy (pipelines/ct/targets.py; `make platform-protos`). The backend's
compiler parses strictly (2.5.0: jsonpb, failure drops the pod labels; 2.15+: protojson, failure
fails the run): a field it does not know must not be there, and what our NetworkPolicies and
programs rely on (pod labels, env and volumes from ConfigMaps and Secrets) must.
"""

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
