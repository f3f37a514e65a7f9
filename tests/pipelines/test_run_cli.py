import pytest

from components.spans import split_window
from pipelines.ct.spec import parse_params
from pipelines.local.runner import RuntimeTaskHandler


def test_window_is_training_months_then_the_test_month():
    assert split_window("2013-01:2013-04") == ("2013-01:2013-03", "2013-04")
    assert split_window("2013-11:2014-01") == ("2013-11:2013-12", "2014-01")


@pytest.mark.parametrize("window", ["2013-04", "2013-04:2013-04", "2013-05:2013-01", "jan:apr"])
def test_bad_windows_are_refused(window):
    with pytest.raises(ValueError, match="window"):
        split_window(window)


def test_params_take_the_compiled_pipelines_types():
    params = parse_params(["max_iter=300", "eval_fraction=1", "model_name=x", "infra_max_p99_ms=2000"])
    assert params == {"max_iter": 300, "eval_fraction": 1.0, "model_name": "x", "infra_max_p99_ms": 2000.0}
    assert isinstance(params["eval_fraction"], float)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_params(["oops"])
    with pytest.raises(ValueError, match="unknown pipeline parameter 'max_iters'.*max_iter"):
        parse_params(["max_iters=3"])
    with pytest.raises(ValueError, match="max_iter='many' is not a valid NUMBER_INTEGER"):
        parse_params(["max_iter=many"])


def test_task_handler_binds_python_to_the_runtime_venv(tmp_path):
    venv_python = tmp_path / "train" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text("")
    handler = RuntimeTaskHandler(image="localhost/kfp-ct/train:0.1.0", full_command=["python", "-m", "x"],
                                 pipeline_root=str(tmp_path), runner=None, venvs_dir=str(tmp_path))
    assert handler.command() == [str(venv_python), "-m", "x"]
    assert handler.environment()["PATH"].startswith(str(venv_python.parent))
    missing = RuntimeTaskHandler(image="localhost/kfp-ct/data:0.1.0", full_command=["python"],
                                 pipeline_root=str(tmp_path), runner=None, venvs_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make setup"):
        missing.command()


def test_the_feature_runtime_runs_optimized_so_feast_imports_without_typeguard_instrumentation():
    """A feature task (fresh process) runs with ``-O``: Feast's classes are not recompiled by typeguard at import."""
    import subprocess

    from pipelines.local.runner import DEFAULT_VENVS

    def handler(runtime):
        return RuntimeTaskHandler(image=f"localhost/kfp-ct/{runtime}:0.1.0", full_command=["python"],
                                  pipeline_root="/tmp", runner=None, venvs_dir=DEFAULT_VENVS)

    assert "PYTHONOPTIMIZE" not in {k for r in ("data", "train", "serve") for k in handler(r).environment()}
    feature = handler("feature")
    probe = ("import sys; from feast import FeatureView; "
             "print(sys.flags.optimize, 'typeguard' in FeatureView.__init__.__code__.co_names)")
    result = subprocess.run([feature.command()[0], "-c", probe], env=feature.environment(), capture_output=True,
                            text=True, check=True)
    assert result.stdout.split() == ["1", "False"]
    # The same interpreter without the runtime's environment instruments them: the probe can tell.
    plain = {k: v for k, v in feature.environment().items() if k != "PYTHONOPTIMIZE"}
    result = subprocess.run([feature.command()[0], "-c", probe], env=plain, capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["0", "True"]


def test_a_container_lost_before_its_status_is_read_reports_what_the_program_recorded(tmp_path, monkeypatch):
    import json

    import docker
    from kfp.local import docker_task_handler, status

    from pipelines.local.runner import container_task_records

    task_dir = tmp_path / "task"
    task_dir.mkdir()
    command = ["python", "--executor-input", json.dumps({"outputs": {"outputFile": str(task_dir / "out.json")}})]

    def lost(self):
        raise docker.errors.APIError("500 Server Error: container abc does not exist in database: no such container")

    monkeypatch.setattr(docker_task_handler.DockerTaskHandler, "run", lost)
    with container_task_records():
        handler = docker_task_handler.DockerTaskHandler.__new__(docker_task_handler.DockerTaskHandler)
        handler.image, handler.full_command = "localhost/kfp-ct/serve:0.1.0", command
        assert handler.run() == status.Status.FAILURE  # nothing recorded: failure
        (task_dir / "exit_status.json").write_text('{"exit_code": 0}')
        assert handler.run() == status.Status.SUCCESS
    assert json.loads((task_dir / "timing.json").read_text())["container"]


def test_the_runner_fails_loudly_when_kfp_local_changes(monkeypatch):
    """local_runner relies on kfp.local internals: an upgrade must be named, not run differently."""
    import kfp
    from kfp.local import subprocess_task_handler

    from pipelines.local import kfp_local_compat
    from pipelines.local import runner as local_runner

    assert kfp_local_compat.problems() == []
    monkeypatch.setattr(kfp, "__version__", "9.9.9")
    monkeypatch.delattr(subprocess_task_handler, "SubprocessTaskHandler")
    problems = kfp_local_compat.problems()
    assert any("9.9.9" in p for p in problems) and any("SubprocessTaskHandler" in p for p in problems)
    with pytest.raises(RuntimeError, match="does not fit this kfp"):
        local_runner.run_pipeline_file("pipelines/ct_pipeline.yaml", {}, "/nonexistent/run")


def test_a_second_model_or_checkout_serves_beside_the_first_on_another_port(tmp_path):
    """make run's serving port: the model's running server's, else the default, else (taken) a free one."""
    import json
    import socket
    import subprocess

    from components.model_server import control
    from components.processes import start_ticks
    from pipelines.local.run import serving_port

    default = control.free_port()
    assert serving_port(str(tmp_path / "a"), default) == default  # free: the default
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", default))
        taken.listen()
        other = serving_port(str(tmp_path / "b"), default)
        assert other != default and control.port_is_free(other)
        # A model whose own server runs keeps its port.
        sleeper = subprocess.Popen(["sleep", "30"])
        try:
            (tmp_path / "c").mkdir()
            (tmp_path / "c" / "server.json").write_text(json.dumps(
                {"pid": sleeper.pid, "started": start_ticks(sleeper.pid), "port": default}))
            assert serving_port(str(tmp_path / "c"), default) == default
        finally:
            sleeper.kill()
            sleeper.wait()


def test_the_runner_loads_a_compiled_pipeline_as_kfp_does(tmp_path):
    """pipelines/local/runner.py load_pipeline (libyaml) gives kfp's load_component_from_file's ComponentSpec."""
    from kfp import compiler, components, dsl

    from pipelines.local.runner import load_pipeline

    @dsl.component(base_image="python:3.11")
    def step(x: int) -> int:
        return x

    @dsl.pipeline(name="described")
    def described(x: int = 1):
        """First line of a description.

        Its second paragraph, on two
        lines."""
        step(x=x)

    @dsl.pipeline(name="plain")
    def plain(x: int = 1):
        step(x=x)

    paths = ["pipelines/ct_pipeline.yaml"]
    for pipeline in (described, plain):
        paths.append(str(tmp_path / f"{pipeline.name}.yaml"))
        compiler.Compiler().compile(pipeline, paths[-1])
    for path in paths:
        ours, kfp = load_pipeline(path), components.load_component_from_file(path)
        assert ours.component_spec == kfp.component_spec and ours.component_yaml == kfp.component_yaml
        assert ours.component_spec.description == kfp.component_spec.description
        assert ours.name == kfp.name
    assert "second paragraph" in load_pipeline(paths[1]).component_spec.description


def test_a_local_run_imports_kfp_without_its_client_and_leaves_no_switch_behind():
    """kfp_local_compat.import_kfp: kfp.client (and the Kubernetes client) stay unimported; dsl, components and local
    are whole; _KFP_RUNTIME is back as it was (absent, or the caller's value)."""
    import os
    import subprocess
    import sys

    probe = ("import os, sys; from pipelines.local import kfp_local_compat as c; c.import_kfp(); "
             "from kfp import components, dsl, local; "
             "print('kfp.client' in sys.modules, 'kubernetes' in sys.modules, os.environ.get('_KFP_RUNTIME'), "
             "hasattr(dsl, 'component'), hasattr(dsl, 'pipeline'), hasattr(components, 'load_component_from_file'))")
    env = {k: v for k, v in os.environ.items() if k != "_KFP_RUNTIME"}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False", "None", "True", "True", "True"]
    result = subprocess.run([sys.executable, "-c", probe], env={**env, "_KFP_RUNTIME": "kept"}, capture_output=True,
                            text=True, check=True)
    assert result.stdout.split()[2] == "kept"
    # Without it, kfp's own __init__ imports the client: the probe can tell.
    plain = probe.replace("c.import_kfp(); ", "")
    result = subprocess.run([sys.executable, "-c", plain], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split()[:2] == ["True", "True"]
