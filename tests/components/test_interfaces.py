"""Component interface tests: every step has the same files, a typed container interface and its image."""

import ast
import importlib
import os

import pytest
from kfp import compiler, dsl

from components import images
from pipelines.ct.spec import steps

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPONENTS = os.path.join(ROOT, "components")
#: The steps of the compiled pipeline (their component packages).
STEPS = [step.package for step in steps()]
#: Helpers every runtime may import: standard library only.
SHARED = {"components", "components.errors", "components.kfp_io", "components.images",
          "components.dataset_spec", "components.feature_views",
          "components.registry", "components.registry_store", "components.run_folder",
          "components.s3_settings", "components.schema_domains", "components.spans", "components.paths",
          "components.feature_lookup", "components.processes"}
#: Helpers with third-party dependencies (imported where used), importable by the runtimes whose lock holds them.
SHARED_WITH = {"components.object_store": {"minio"}, "components.sources": {"minio", "pyarrow", "pandas"},
               "components.model_files": {"joblib"}, "components.model_metrics": {"sklearn", "numpy"},
               "components.labels": {"pandas", "numpy"}, "components.frames": {"pandas"},
               "components.beam_statistics": {"apache_beam", "pyarrow", "tensorflow_data_validation", "tfx_bsl"}}
#: Libraries of one runtime that are not components themselves.
LIBRARIES = {"model_server": "serve", "lineage": "data", "monitor": "monitor", "feature_store": "feature"}


def _component(step):
    module = importlib.import_module(f"components.{step}.component")
    return getattr(module, step)


def _runtime(step):
    return images.runtime_of(_component(step).component_spec.implementation.container.image)


@pytest.mark.parametrize("step", STEPS)
def test_step_folder_has_the_standard_files(step):
    files = set(os.listdir(os.path.join(COMPONENTS, step)))
    assert {"__init__.py", "component.py", "__main__.py"} <= files
    logic = files - {"__init__.py", "component.py", "__main__.py", "__pycache__", "schema", "README.md"}
    assert logic, f"{step} has no logic module beside its component"


@pytest.mark.parametrize("step", STEPS)
def test_component_is_a_container_component_running_its_program(step):
    component = _component(step)
    container = component.component_spec.implementation.container
    assert container.command == ["python", "-m", f"components.{step}"]
    assert list(container.args) == ["--executor-input", "{{$}}"]
    assert container.image == images.image(_runtime(step))
    runtime_dir = os.path.join(ROOT, "images", _runtime(step))
    assert os.path.isfile(os.path.join(ROOT, "images", "Dockerfile"))  # one template, RUNTIME build argument
    assert os.path.isfile(os.path.join(runtime_dir, "requirements.lock"))
    assert component.component_spec.description, "component needs a docstring"


@pytest.mark.parametrize("step", STEPS)
def test_every_input_and_output_is_typed_and_compiles(step, tmp_path):
    component = _component(step)
    spec = component.component_spec
    for name, spec_input in (spec.inputs or {}).items():
        assert spec_input.type and spec_input.type != "Any", f"{step}.{name} is untyped"
    assert spec.outputs, f"{step} has no outputs"
    compiler.Compiler().compile(component, str(tmp_path / f"{step}.yaml"))


def _imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def _step_of(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "components" else None


def test_no_component_imports_code_of_another_runtime():
    runtime_of_step = {step: _runtime(step) for step in STEPS}
    runtime_of_step.update(LIBRARIES)
    problems = []
    for step, runtime in runtime_of_step.items():
        for dirpath, _dirs, files in os.walk(os.path.join(COMPONENTS, step)):
            for name in files:
                if not name.endswith(".py") or name == "component.py":
                    continue
                for module in _imports(os.path.join(dirpath, name)):
                    if module.split(".")[0] == "kfp":
                        problems.append(f"{step}/{name} imports kfp: only component.py may")
                    for dependency in SHARED_WITH.get(module, ()):
                        if not _locked(runtime, dependency):
                            problems.append(f"{step}/{name} ({runtime}) imports {module}, which needs "
                                            f"{dependency}, absent from the {runtime} lock")
                    if not module.startswith("components.") or module in SHARED or module in SHARED_WITH:
                        continue
                    other = _step_of(module)
                    if other in runtime_of_step and runtime_of_step[other] != runtime:
                        problems.append(f"{step}/{name} ({runtime}) imports {module} ({runtime_of_step[other]})")
    assert not problems, "\n".join(problems)


def test_no_step_imports_another_step():
    """Code two steps share lives in a shared module (components/*.py), not in one of the steps."""
    problems = []
    for step in STEPS:
        for dirpath, _dirs, files in os.walk(os.path.join(COMPONENTS, step)):
            for name in files:
                if name.endswith(".py"):
                    problems += [f"{step}/{name} imports {module}" for module in _imports(os.path.join(dirpath, name))
                                 if _step_of(module) in STEPS and _step_of(module) != step]
    assert not problems, "\n".join(problems)


def test_every_step_folder_is_a_step_of_the_pipeline():
    folders = {name for name in os.listdir(COMPONENTS)
               if os.path.isfile(os.path.join(COMPONENTS, name, "component.py"))}
    assert folders == set(STEPS), "a component folder that is not wired into the pipeline, or the reverse"


def _locked(runtime, package):
    """Whether the runtime's lock pins ``package`` (an import name; compared as normalized distribution names)."""
    wanted = {"sklearn": "scikit-learn"}.get(package, package).lower().replace("_", "-")
    with open(os.path.join(ROOT, "images", runtime, "requirements.lock"), encoding="utf-8") as handle:
        return any(line.split("==")[0].lower().replace("_", "-") == wanted for line in handle if "==" in line)


def test_shared_helpers_use_the_standard_library_only():
    allowed_roots = {"components", "__future__"}
    import sys

    for module, dependencies in SHARED_WITH.items():
        path = os.path.join(ROOT, *module.split(".")) + ".py"
        for imported in _imports(path):
            root = imported.split(".")[0]
            assert root in allowed_roots | dependencies or root in sys.stdlib_module_names, f"{module}: {imported}"
    for module in SHARED - {"components"}:
        path = os.path.join(ROOT, *module.split(".")) + ".py"
        if not os.path.exists(path):
            path = os.path.join(ROOT, *module.split("."), "__init__.py")
        for imported in _imports(path):
            root = imported.split(".")[0]
            assert root in allowed_roots or root in sys.stdlib_module_names, f"{module} imports {imported}"


def test_image_references_come_from_one_place_and_round_trip():
    for runtime in images.RUNTIMES:
        assert images.runtime_of(images.image(runtime)) == runtime
        assert os.path.isdir(os.path.join(ROOT, "images", runtime))
    assert images.image("data", registry="registry.example/team").startswith("registry.example/team/data:")
    with pytest.raises(ValueError):
        images.runtime_of("python:3.11")


def test_container_components_keep_kfp_typing():
    assert issubclass(dsl.Metrics, dsl.Artifact)  # guards the import of dsl in this module


@pytest.mark.parametrize("step", STEPS)
def test_programs_read_artifact_metadata_only_through_kfp_io(step):
    """The KFP backend wraps list and dict metadata; only kfp_io's Executor.input_metadata unwraps it."""
    path = os.path.join(COMPONENTS, step, "__main__.py")
    tree = ast.parse(open(path, encoding="utf-8").read())
    raw = [node.lineno for node in ast.walk(tree)
           if isinstance(node, ast.Constant) and node.value in ("metadata", "artifacts", "parameterValues")]
    assert not raw, f"{step}/__main__.py reads executor JSON itself (lines {raw}); use Executor.input_metadata"


_EXECUTOR_READS = {"param": "inputs", "input_path": "inputs", "input_metadata": "inputs",
                   "output_path": "outputs", "set_metadata": "outputs", "set_parameter": "outputs"}


@pytest.mark.parametrize("step", STEPS)
def test_every_name_a_program_reads_or_writes_is_in_its_component_interface(step):
    """``executor.param("typo")`` returns None instead of failing: the names are checked here."""
    spec = _component(step).component_spec
    declared = {"inputs": set(spec.inputs or {}), "outputs": set(spec.outputs or {})}
    used = {"inputs": set(), "outputs": set()}
    for dirpath, _dirs, files in os.walk(os.path.join(COMPONENTS, step)):
        for name in files:
            if not name.endswith(".py") or name == "component.py":
                continue
            tree = ast.parse(open(os.path.join(dirpath, name), encoding="utf-8").read())
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in _EXECUTOR_READS and node.args
                        and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                    used[_EXECUTOR_READS[node.func.attr]].add(node.args[0].value)
    # The spec is read through executor.dataset_spec(): its input must be declared where it is called.
    source = "".join(open(os.path.join(dirpath, f), encoding="utf-8").read()
                     for dirpath, _dirs, files in os.walk(os.path.join(COMPONENTS, step))
                     for f in files if f.endswith(".py") and f != "component.py")
    if "executor.dataset_spec()" in source:
        used["inputs"].add("dataset_spec")
    assert used["inputs"] or used["outputs"], f"{step}: no executor call found"
    for kind in ("inputs", "outputs"):
        assert used[kind] <= declared[kind], f"{step} uses {kind} its component does not declare: " \
                                             f"{sorted(used[kind] - declared[kind])}"
