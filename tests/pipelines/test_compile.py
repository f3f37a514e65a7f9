"""Compile checks: the committed YAML is what the code compiles to, and it loads."""

import os

import yaml
from kfp import components

from pipelines import compile as compile_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_committed_yaml_equals_a_fresh_compile(monkeypatch, tmp_path):
    monkeypatch.delenv("IMAGE_REGISTRY", raising=False)
    for func, committed in compile_module.pipelines():
        fresh = tmp_path / "fresh.yaml"
        compile_module.compile_to(func, str(fresh))
        assert fresh.read_text() == open(committed).read(), f"{committed} is stale: run `make compile`"


def test_compiled_pipeline_has_the_parameters_and_steps():
    spec = next(yaml.safe_load_all(open(os.path.join(ROOT, "pipelines", "ct_pipeline.yaml"))))
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    for name in ["source_uri", "train_spans", "test_span", "learning_rate", "max_iter", "min_auc",
                 "max_auc_drop", "drift_js_threshold", "drift_linf_threshold", "metadata_uri"]:
        assert name in parameters
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == 10
    assert all(e["container"]["image"].startswith("localhost/kfp-ct/") for e in executors.values())


def test_compiled_yaml_loads_as_a_component():
    pipeline = components.load_component_from_file(os.path.join(ROOT, "pipelines", "ct_pipeline.yaml"))
    assert pipeline.name == "ct-flights-delay"


def test_check_mode_reports_a_stale_yaml(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "ct_pipeline.yaml"
    stale.write_text("# stale\n")
    original = compile_module.pipelines
    monkeypatch.setattr(compile_module, "pipelines", lambda: [(f, str(stale)) for f, _ in original()])
    assert compile_module.main(["--check"]) == 1
    assert "is stale" in capsys.readouterr().out


def test_every_task_runs_non_root_with_resources_and_s3_steps_get_the_secret():
    documents = list(yaml.safe_load_all(open(os.path.join(ROOT, "pipelines", "ct_pipeline.yaml"))))
    spec = documents[0]
    platform = next(d for d in documents if "platforms" in d)["platforms"]["kubernetes"]["deploymentSpec"]
    executors = spec["deploymentSpec"]["executors"]
    for name, executor in executors.items():
        resources = executor["container"]["resources"]
        assert resources["resourceCpuLimit"] and resources["resourceMemoryLimit"], name
        security = platform["executors"][name]["securityContext"]
        assert security["runAsNonRoot"] and security["runAsUser"] == "10001", name
    with_secret = {n for n, e in platform["executors"].items() if e.get("secretAsEnv")}
    assert with_secret == {"exec-fingerprint", "exec-extract", "exec-resolve-baseline", "exec-deploy"}
