"""A run killed mid-way resumes from the steps that completed; new data is never hidden by the cache."""

import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from pipelines.local.runner import REPO_ROOT

from .conftest import MIN_AUC, copy_source, data_python, feature_url, run_window

pytestmark = pytest.mark.e2e


def _kill_during_train(var, source, port):
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.local.run", "--window", "2013-01:2013-04", "--var", str(var),
         f"source_uri={source}", f"serving_port={port}", f"metric_threshold={MIN_AUC}", "infra_max_p99_ms=2000",
         f"feature_server_url={feature_url(var)}"],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not glob.glob(os.path.join(str(var), "runs", "*", "*", "train", "task.log")):
        assert process.poll() is None, "the run ended before train started"
        assert time.monotonic() < deadline, "train did not start in time"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_killed_run_resumes_with_identical_metrics_and_new_data_reruns(deployed, sliced_source, tmp_path):
    from components.model_server import control

    var, port = tmp_path / "var", control.free_port()
    source = copy_source(sliced_source, tmp_path / "source")
    try:
        _kill_during_train(var, source, port)
        code, facts = run_window(var, "2013-01:2013-04", source, port)
        assert code == 0
        cached = sorted(s["step"] for s in facts["steps"] if s["cached"])
        executed = sorted(s["step"] for s in facts["steps"] if not s["cached"])
        # Production did not change since the killed run began, so the baseline is reused too when it
        # was resolved before the kill (kfp.local orders independent tasks differently from run to run).
        reading = {"extract", "join-features", "prepare", "validate-data"}
        assert reading <= set(cached) <= reading | {"resolve-baseline"}
        assert "train" in executed and "fingerprint" in executed
        # Same data, same code: the resumed run's model scores exactly like an uninterrupted run's.
        assert facts["candidate"] == deployed["facts"]["candidate"]

        # No new data: the rerun after that deployment compares against the new production model;
        # once production is unchanged too, only the fingerprint, materialize and deploy (both of which
        # change nothing) run.
        code, after_deployment = run_window(var, "2013-01:2013-04", source, port)
        assert code == 0 and "resolve-baseline" in [s["step"] for s in after_deployment["steps"] if not s["cached"]]
        code, steady = run_window(var, "2013-01:2013-04", source, port)
        assert code == 0
        assert sorted(s["step"] for s in steady["steps"] if not s["cached"]) == ["deploy", "fingerprint", "materialize"]
        assert steady["materialization"]["spans"] == []  # nothing new for the online store
        assert steady["candidate"] == facts["candidate"] and not steady["deployment"]["deployed"]

        data_python(os.path.join("tests", "span_tools.py"), source, "2013-02", "drop_last_row")
        code, changed = run_window(var, "2013-01:2013-04", source, port)
        assert code == 0
        # Every step that reads data reruns; only the baseline (production did not change) is reused.
        assert [s["step"] for s in changed["steps"] if s["cached"]] == ["resolve-baseline"]
        assert changed["data"]["data_hash"] != facts["data"]["data_hash"]
        assert changed["data"]["rows_per_span"]["2013-02"] == facts["data"]["rows_per_span"]["2013-02"] - 1
    finally:
        control.stop(os.path.join(str(var), "serving", "flights-delay"))
