"""Compile checks: the committed YAML is what the code compiles to, and it loads."""

import importlib
import os

import yaml
from kfp import components

from pipelines.ct import compile as compile_module
from pipelines.ct import spec as spec_module

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
    for name in ["source_uri", "train_spans", "test_span", "learning_rate", "max_iter", "metric_threshold",
                 "metric_max_change", "dataset_spec", "drift_js_threshold", "drift_linf_threshold", "metadata_uri"]:
        assert name in parameters
    executors = spec["deploymentSpec"]["executors"]
    step_folders = {name for name in os.listdir(os.path.join(ROOT, "components"))
                    if os.path.isfile(os.path.join(ROOT, "components", name, "component.py"))}
    assert len(executors) == len(spec_module.steps()) == len(step_folders)
    assert {step.package for step in spec_module.steps()} == step_folders
    assert all(e["container"]["image"].startswith("localhost/kfp-ct/") for e in executors.values())


def test_compiled_yaml_loads_as_a_component():
    pipeline = components.load_component_from_file(os.path.join(ROOT, "pipelines", "ct_pipeline.yaml"))
    assert pipeline.name == "continuous-training"


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
    declared = {f"exec-{step.name}" for step in spec_module.steps()
                if importlib.import_module(f"components.{step.package}.component").POD.s3}
    assert with_secret == declared and "exec-fingerprint" in declared


def _platform_executors():
    documents = list(yaml.safe_load_all(open(os.path.join(ROOT, "pipelines", "ct_pipeline.yaml"))))
    return documents[0], next(d for d in documents if "platforms" in d)["platforms"]["kubernetes"][
        "deploymentSpec"]["executors"]


def _imports_of(module):
    import ast

    path = os.path.join(ROOT, *module.split("."))
    path = path + ".py" if os.path.exists(path + ".py") else os.path.join(path, "__init__.py")
    if not os.path.exists(path):
        return
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("components"):
            yield node.module
            for alias in node.names:  # "from components import registry" imports a module too
                if os.path.exists(os.path.join(ROOT, *node.module.split("."), alias.name + ".py")):
                    yield f"{node.module}.{alias.name}"


def _reaches(program, target="components.s3_settings"):
    seen, todo = set(), [program, f"{program}.__main__"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(_imports_of(module))
    return any(module == target or module.startswith(f"{target}.") for module in seen)


def _reaches_s3(program):
    return _reaches(program)


def test_every_task_that_opens_the_feature_store_gets_its_repository_password_and_label():
    """On a cluster the Feast repository is the ConfigMap ct-feature-store, Redis admits labelled pods only."""
    spec, platform = _platform_executors()
    opening = {name for name, executor in spec["deploymentSpec"]["executors"].items()
               if _reaches(executor["container"]["command"][-1], "components.feature_store")}
    assert opening == {"exec-join-features", "exec-materialize"}
    mounted = {n for n, e in platform.items()
               if {"configMapName": "ct-feature-store", "mountPath": "/etc/kfp-ct/feature-store",
                   "optional": True} in [{k: m.get(k) for k in ("configMapName", "mountPath", "optional")}
                                         for m in e.get("configMapAsVolume", [])]}
    labelled = {n for n, e in platform.items() if e.get("podMetadata", {}).get("labels", {}).get(
        "kfp-ct/online-store-client") == "true"}
    with_password = {n for n, e in platform.items()
                     if any(s["secretName"] == "ct-feature-store-credentials" for s in e.get("secretAsEnv", []))}
    assert opening == mounted == labelled == with_password


def test_every_task_whose_program_can_reach_s3_gets_the_endpoint_and_credentials():
    """Issue 11 finding 3: S3_ENDPOINT (scheme = TLS) comes from the ct-s3-config ConfigMap."""
    spec, platform = _platform_executors()
    reaching = {name for name, executor in spec["deploymentSpec"]["executors"].items()
                if _reaches_s3(executor["container"]["command"][-1])}
    assert reaching, "no program reaches components.s3_settings: the import walk is broken"
    # infra_validate imports the model server, which can follow an S3 registry; the sandbox it starts
    # serves the model artifact's folder instead, so it gets no S3 credentials (least privilege).
    assert "registry" not in open(os.path.join(ROOT, "components", "infra_validate", "infra_validate.py")).read()
    reaching -= {"exec-infra-validate"}
    with_secret = {n for n, e in platform.items() if e.get("secretAsEnv")}
    with_endpoint = {n for n, e in platform.items()
                     if any(m["configMapName"] == "ct-s3-config" and {"configMapKey": "S3_ENDPOINT",
                                                                      "envVar": "S3_ENDPOINT"} in m["keyToEnv"]
                            for m in e.get("configMapAsEnv", []))}
    assert reaching == with_secret == with_endpoint


def test_a_registry_given_at_compile_time_reaches_every_image_and_the_inference_service(tmp_path):
    """Issue 11 finding 4: the serving image is a compiled constant, never resolved inside the pod."""
    import subprocess
    import sys

    out = tmp_path / "registry.yaml"
    code = ("from pipelines.ct import compile as c; from pipelines.ct.pipeline import ct_pipeline; "
            f"c.compile_to(ct_pipeline, {str(out)!r})")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={**os.environ, "IMAGE_REGISTRY": "registry.example/team", "PYTHONPATH": ROOT})
    spec = next(yaml.safe_load_all(out.read_text()))
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images and all(i.startswith("registry.example/team/") for i in images), images
    deploy_task = spec["components"]["comp-condition-1"]["dag"]["tasks"]["deploy"]
    constant = deploy_task["inputs"]["parameters"]["serving_image"]["runtimeValue"]["constant"]
    from components.images import VERSION

    assert constant == f"registry.example/team/serve:{VERSION}"
    source = open(os.path.join(ROOT, "components", "deploy", "__main__.py"), encoding="utf-8").read()
    assert "components.images" not in source, "deploy must take the image from its parameter"
