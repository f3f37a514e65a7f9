"""Warm runtimes (pipelines/local/warm.py): a task forked from a server that imported its libraries behaves as
the fresh process it replaces (argv, environment, working directory, output, exit status), a crash or a
kill takes only the task down, and a runtime whose imports fail sends its tasks to fresh processes."""

import os
import signal
import sys
import tempfile
import time

import pytest

from components import images
from pipelines.local import warm

TASK = '''
import os, sys
print("argv", sys.argv[1:])
print("env", os.environ.get("TASK_VALUE"), "HOME" in os.environ)
print("cwd", os.getcwd())
print("to stderr", file=sys.stderr)
mode = sys.argv[1]
if mode == "kill":
    os.kill(os.getpid(), 9)
if mode == "crash":
    raise RuntimeError("boom")
if mode == "flags":
    print("optimize", sys.flags.optimize)
if mode == "preloaded":
    print("preloaded", "json" in sys.modules and "colorsys" in sys.modules)
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
'''


@pytest.fixture
def package(tmp_path):
    folder = tmp_path / "pkgs" / "warmtask"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "__main__.py").write_text(TASK)
    return str(tmp_path / "pkgs")


def _server(package, preload):
    folder = tempfile.mkdtemp(prefix="warm-test-")  # a short path: Unix socket names are limited
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package, os.getcwd()])}
    server = warm.WarmRuntime("test", sys.executable, preload, os.path.join(folder, "test.sock"), env)
    assert server.wait_ready()
    return server


def _run(server, argv, env=None, cwd="/"):
    lines = []
    code = server.run("warmtask", argv, env if env is not None else {"TASK_VALUE": "v"}, cwd, lines.append)
    return code, "".join(lines)


def test_a_forked_task_has_its_own_argv_environment_directory_output_and_exit_code(package, tmp_path):
    server = _server(package, ["json", "colorsys"])
    try:
        code, output = _run(server, ["ok", "3"], {"TASK_VALUE": "given"}, str(tmp_path))
        assert code == 3
        assert "argv ['ok', '3']" in output and "env given False" in output  # the environment is replaced whole
        assert f"cwd {tmp_path}" in output and "to stderr" in output
        deadline = time.monotonic() + 30
        while server.preloaded() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # a task that comes before the imports are done imports what it lacks itself
        assert server.preloaded()["preloaded"] == ["json", "colorsys"]
        code, output = _run(server, ["preloaded"])
        assert code == 0 and "preloaded True" in output  # forked after the server's imports
    finally:
        server.stop()


def test_a_crash_or_a_kill_takes_only_the_task_down(package):
    server = _server(package, ["json"])
    try:
        code, output = _run(server, ["crash"])
        assert code == 1 and "RuntimeError: boom" in output and "Traceback" in output
        code, _ = _run(server, ["kill"])
        assert code == -signal.SIGKILL  # as subprocess reports a signal
        code, output = _run(server, ["ok"])
        assert code == 0 and server.alive  # the server serves on
    finally:
        server.stop()


def test_a_runtime_whose_imports_fail_says_so_and_its_tasks_run_afresh(package):
    server = _server(package, ["no_such_module_anywhere"])
    try:
        server.process.wait(30)  # it stops at the failing import
        assert not server.alive
        assert server.failure() == ("import no_such_module_anywhere: ModuleNotFoundError: "
                                    "No module named 'no_such_module_anywhere'")
        with pytest.raises(OSError, match="no_such_module_anywhere"):
            _run(server, ["ok"])
    finally:
        server.stop()


def test_the_runner_falls_back_to_a_fresh_process_and_names_the_reason(package, monkeypatch):
    from pipelines.local.runner import RuntimeTaskHandler

    server = _server(package, ["no_such_module_anywhere"])
    server.process.wait(30)
    handler = RuntimeTaskHandler(image="localhost/kfp-ct/dev:0.1.0", full_command=["python", "-m", "warmtask", "ok"],
                                 pipeline_root="/tmp", runner=None, warm={"dev": server})
    monkeypatch.setattr(handler, "command", lambda: [sys.executable, "-m", "warmtask", "ok"])
    monkeypatch.setattr(handler, "environment", lambda: {**os.environ, "PYTHONPATH": package, "TASK_VALUE": "v"})
    lines = []
    try:
        assert handler._execute(lines.append) == 0
    finally:
        server.stop()
    output = "".join(lines)
    assert output.startswith("[warm] the test runtime is not warm (import no_such_module_anywhere: "
                             "ModuleNotFoundError") and "argv ['ok']" in output


def test_each_runtime_preloads_what_its_steps_declare():
    from pipelines.ct.spec import PIPELINE_YAML
    from pipelines.local.runner import warm_plan, warm_preloads

    preloads = warm_preloads(PIPELINE_YAML)
    order = list(warm_plan(PIPELINE_YAML))  # the order the run needs the tasks in: servers import in it
    assert order.index("extract") < order.index("join-features") < order.index("validate-data") \
        < order.index("train") < order.index("infra-validate") < order.index("deploy")
    assert "tensorflow_data_validation" in preloads["data"] and "feast" in preloads["feature"]
    assert "sklearn.ensemble" in preloads["train"]
    # infra-validate and deploy fork the model server, which loads the model (tests/unit/serve checks what it needs).
    assert preloads["serve"] == ["components.model_server.server", *images.MODEL_MODULES]
    # A step that declares nothing starts afresh (no wait on its runtime's imports); a program that is no
    # step (None) forks from the server when there is one.
    from pipelines.local.runner import _preloads

    assert _preloads("components.fingerprint") == () and _preloads("warmtask") is None
    assert "tensorflow_data_validation" in _preloads("components.validate_data")


def test_a_runtime_s_server_starts_with_its_first_task_and_only_then(package):
    """A run served from the cache starts no server: their imports would only compete with it for the cores."""
    folder = os.path.join(tempfile.gettempdir(), f"warm-pool-{os.getpid()}")
    lines = []
    pool = warm.WarmPool({"dev": ["json"]}, lambda runtime: sys.executable, folder,
                         {**os.environ, "PYTHONPATH": os.pathsep.join([package, os.getcwd()])}, lines.append)
    try:
        assert pool.servers == {} and pool.get("serve") is None  # nothing to import there: fresh processes
        server = pool.get("dev")
        assert server.alive and pool.get("dev") is server and list(pool.servers) == ["dev"]
        assert lines == ["[warm] the dev runtime's server is up: its later tasks fork from it"]
        code, output = _run(server, ["ok"])
        assert code == 0 and "argv ['ok']" in output
    finally:
        pool.stop()
    assert not os.path.exists(folder) and not server.alive


def test_a_server_runs_with_its_runtime_s_environment(package):
    """The feature runtime's server, and so every task forked from it, runs optimized (images.RUNTIME_ENV)."""
    assert images.RUNTIME_ENV["feature"] == {"PYTHONOPTIMIZE": "1"}
    folder = os.path.join(tempfile.gettempdir(), f"warm-env-{os.getpid()}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONOPTIMIZE"}
    pool = warm.WarmPool({"feature": ["json"], "dev": ["json"]}, lambda runtime: sys.executable, folder,
                         {**env, "PYTHONPATH": os.pathsep.join([package, os.getcwd()])}, lambda line: None)
    try:
        assert "optimize 1" in _run(pool.get("feature"), ["flags"])[1]
        assert "optimize 0" in _run(pool.get("dev"), ["flags"])[1]
    finally:
        pool.stop()


def test_a_server_imports_after_a_task_what_the_run_s_later_tasks_of_its_runtime_need(package):
    """Not what tasks served from the cache, or already run, would have needed."""
    pool = warm.WarmPool({"dev": ["json", "colorsys"]}, lambda runtime: sys.executable, "/nonexistent",
                         {}, plan={"a": ("dev", ("json",)), "b": ("dev", ("colorsys", "json")),
                                   "c": ("dev", ("wave",)), "d": ("other", ("csv",))},
                         passed_over=lambda: ["c"])
    assert pool.later_imports("dev", "a") == ["colorsys", "json"]  # b's; c was served from the cache
    assert pool.later_imports("dev", "b") == [] and pool.later_imports("other", "d") == []
    assert warm.WarmPool({"dev": ["json"]}, sys.executable, "/x", {}).later_imports("dev", "a") == ["json"]
    server = _server(package, [])
    try:
        code, _ = _run(server, ["ok"])
        assert code == 0 and server.preloaded() is None  # nothing asked: nothing imported
        lines = []
        assert server.run("warmtask", ["ok"], {}, "/", lines.append, then_import=["colorsys", "json"]) == 0
        deadline = time.monotonic() + 30
        while server.preloaded() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.preloaded()["preloaded"] == ["colorsys", "json"]
        code, output = _run(server, ["preloaded"])
        assert code == 0 and "preloaded True" in output
    finally:
        server.stop()


def test_a_task_that_writes_artifacts_starts_the_servers_of_the_tasks_downstream_of_it(package):
    """Their inputs will be new, so they will run: their runtimes import while it runs (not on a cached rerun)."""
    from pipelines.ct.spec import PIPELINE_YAML
    from pipelines.local.runner import artifact_downstream

    downstream = artifact_downstream(PIPELINE_YAML)
    assert downstream["extract"] >= {"join-features", "train", "materialize", "deploy"}  # deploy: in release's DAG
    assert downstream["resolve-baseline"] == {"evaluate", "validate-model", "infra-validate", "deploy"}
    assert "fingerprint" not in downstream and "materialize" not in downstream  # never cached: running tells nothing
    folder = os.path.join(tempfile.gettempdir(), f"warm-ahead-{os.getpid()}")
    lines = []
    pool = warm.WarmPool({"dev": ["colorsys"], "other": ["wave"]}, lambda runtime: sys.executable, folder,
                         {**os.environ, "PYTHONPATH": os.pathsep.join([package, os.getcwd()])}, lines.append,
                         plan={"a": ("other", ()), "b": ("dev", ("colorsys",)), "c": ("other", ("wave",))},
                         passed_over=lambda: ["c"], downstream={"a": {"b", "c"}})
    try:
        pool.task_starts("b")  # writes nothing: starts nothing
        assert pool.servers == {}
        pool.task_starts("a")
        assert list(pool.servers) == ["dev"]  # c was served from the cache: no server for "other"
        assert lines == ["[warm] a runs, so its downstream tasks will: the dev runtime's server starts and imports "
                         "colorsys"]
        server = pool.get("dev")
        deadline = time.monotonic() + 30
        while server.preloaded() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # no task needed to come first: it imported at once
        assert server.preloaded()["preloaded"] == ["colorsys"]
        code, output = _run(server, ["preloaded"])
        assert code == 0 and "preloaded True" in output
    finally:
        pool.stop()


def test_without_feature_views_the_feature_store_steps_import_nothing_ahead():
    """A spec without feature views: join_features passes the spans through, materialize has nothing to do."""
    from components.dataset_spec import DatasetSpec
    from components.paths import REPO_ROOT
    from pipelines.ct.spec import PIPELINE_YAML
    from pipelines.local.runner import spec_declares_feature_views, warm_plan, warm_preloads

    taxi = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/taxi/spec.toml").to_json()
    flights = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml").to_json()
    assert not spec_declares_feature_views({"dataset_spec": taxi})
    assert spec_declares_feature_views({"dataset_spec": flights}) and spec_declares_feature_views({})
    plan = warm_plan(PIPELINE_YAML, feature_views=False)
    assert plan["join-features"] == ("feature", ()) and plan["materialize"] == ("feature", ())
    assert "feast" in warm_plan(PIPELINE_YAML)["join-features"][1]
    assert "feature" not in warm_preloads(PIPELINE_YAML, feature_views=False)  # no feature server at all


def test_servers_ahead_of_their_tasks_import_one_at_a_time_in_the_order_the_run_needs_them(package):
    """Two cores: runtimes importing at once beside a task made each the last to be ready (Feast's included)."""
    # dev's import lasts until the test opens the gate: what is asserted while it imports holds on a busy machine.
    gate = os.path.join(package, "gate")
    with open(os.path.join(package, "slowimport.py"), "w", encoding="utf-8") as handle:
        handle.write(f"import os, time\nwhile not os.path.exists({gate!r}):\n    time.sleep(0.02)\n")
    lines = []

    def wait_until(condition):
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
        return condition()

    def pool_of(**later):
        """A's downstream tasks: b (dev, a slow import) first in the plan, then ``later`` (name: (runtime, module))."""
        preloads = {"dev": ["slowimport"], **{runtime: [module] for runtime, module in later.values()}}
        plan = {"a": ("first", ()), "b": ("dev", ("slowimport",)),
                **{name: (runtime, (module,)) for name, (runtime, module) in later.items()}}
        return warm.WarmPool(preloads, lambda runtime: sys.executable,
                             os.path.join(tempfile.gettempdir(), f"warm-order-{os.getpid()}"),
                             {**os.environ, "PYTHONPATH": os.pathsep.join([package, os.getcwd()])}, lines.append,
                             plan=plan, downstream={"a": set(plan) - {"a"}})

    # Plan order is need order: "b" (dev) comes before "c" (other), which comes before "d" (third).
    pool = pool_of(c=("other", "wave"), d=("third", "json"))
    try:
        pool.task_starts("a")
        assert list(pool.servers) == ["dev"]  # the others wait for dev's imports
        time.sleep(0.5)
        assert list(pool.servers) == ["dev"]
        open(gate, "w").close()
        assert wait_until(lambda: len(pool.servers) == 3)
        assert list(pool.servers) == ["dev", "other", "third"]
        assert [line.split(": the ")[1].split(" runtime")[0] for line in lines] == ["dev", "other", "third"]
        assert pool.servers["dev"].preloaded()["preloaded"] == ["slowimport"]  # before "other" started
    finally:
        pool.stop()
    # A task arriving before its runtime's turn starts its server at once (it runs first, then imports).
    os.remove(gate)
    pool = pool_of(c=("other", "wave"), e=("other", "colorsys"))
    try:
        pool.task_starts("a")
        server = pool.get("other")  # c's task is here, dev still imports
        assert server is pool.servers["other"] and set(pool.servers) == {"dev", "other"}
        # Its later imports (e's) wait for dev's turn to end, then it is asked for them with no task.
        assert pool.later_imports("other", "c") == []
        code, output = _run(server, ["preloaded"])
        assert code == 0
        time.sleep(0.5)
        assert server.preloaded() is None  # not before dev's turn ends
        open(gate, "w").close()
        assert wait_until(lambda: server.preloaded() is not None)
        assert pool.servers["dev"].preloaded() is not None
        assert server.preloaded()["preloaded"] == ["colorsys"]
    finally:
        pool.stop()
