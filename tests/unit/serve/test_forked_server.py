"""A step forks its model server from itself when it has the server imported (control.start_process's fork).

Forked in a child interpreter of the test, as a pipeline step would: never from pytest's own process.
"""

import json
import os
import subprocess
import sys

from components.paths import REPO_ROOT

STEP = """
import json, sys, time
import components.model_server.server  # what the warm serve runtime imports for infra-validate and deploy
from components.model_server import control
from components.processes import stop_process
model_dir, log_path, instances = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
port = control.free_port()
started = time.perf_counter()
process = control.start_process(["--model-dir", model_dir], "m", port, log_path, fork=True)
control.wait_ready(f"http://127.0.0.1:{port}", "m", 60, process)
ready = time.perf_counter() - started
status, body = control.http_json("POST", f"http://127.0.0.1:{port}/v1/models/m:predict", {"instances": instances})
alive = process.poll() is None
stop_process(process.pid)
print(json.dumps({"kind": type(process).__name__, "status": status, "body": body, "alive": alive,
                  "after_stop": process.wait(10), "ready_seconds": ready, "session": process.pid}))
"""


def test_a_forked_server_serves_like_a_started_one_and_stops(trained, samples, tmp_path):
    folder, _ = trained
    log_path = str(tmp_path / "server.log")
    result = subprocess.run([sys.executable, "-c", STEP, folder, log_path, json.dumps(samples["instances"][:3])],
                            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["kind"] == "ForkedProcess" and answer["status"] == 200 and answer["alive"]
    assert answer["body"]["probabilities"] == samples["probabilities"][:3]
    assert answer["after_stop"] in (0, -15)  # stopped by its session's SIGTERM
    with open(log_path, encoding="utf-8") as handle:
        log = handle.read()
    assert "serving m from" in log  # the server's output went to its log, not the step's


def test_unless_asked_to_fork_a_server_is_a_fresh_interpreter(trained, tmp_path):
    from components.model_server import control

    folder, _ = trained
    port = control.free_port()
    process = control.start_process(["--model-dir", folder], "m", port, str(tmp_path / "s.log"), fork=False)
    try:
        assert isinstance(process, subprocess.Popen)
        control.wait_ready(f"http://127.0.0.1:{port}", "m", 60, process)
    finally:
        control.stop_process(process.pid)


def test_the_preloaded_modules_are_all_a_trained_model_needs(trained):
    """infra_validate and deploy preload images.MODEL_MODULES: loading a model after them imports nothing more."""
    script = ("import importlib, sys; from components.images import MODEL_MODULES; "
              "import components.model_server.server; [importlib.import_module(m) for m in MODEL_MODULES]; "
              "before = set(sys.modules); from components.model_server.model import LoadedModel; "
              "LoadedModel(sys.argv[1], 'v1', 1, True); print(sorted(set(sys.modules) - before))")
    result = subprocess.run([sys.executable, "-c", script, trained[0]], capture_output=True, text=True, timeout=120,
                            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
