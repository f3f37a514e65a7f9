"""An online experiment started by the pipeline's deploy step and decided by the monitor on real traffic.

The compiled pipeline runs twice through kfp.local (as `make run`); the second run deploys with
``canary_traffic_percent=50``. A month of real flights is then served (the demo's replay), its
ground truth reaches the real monitor, and the monitor decides: the registry and the model
server follow, production untouched unless the candidate was shown better.
"""

import json
import os
import subprocess
import time

import pytest

from components import registry
from components.model_server import control
from components.monitor import control as monitor_control
from pipelines.examples.flights.dataset import SPAN_FILE
from pipelines.local.runner import REPO_ROOT, runtime_python

from .conftest import run_window

pytestmark = pytest.mark.e2e
SPEC = os.path.join(REPO_ROOT, "pipelines", "examples", "flights", "spec.toml")
MODEL = "flights-delay"


def test_a_candidate_deployed_by_the_pipeline_is_decided_by_the_monitor_on_live_ground_truth(sliced_source,
                                                                                               tmp_path):
    var, port, monitor_port = tmp_path / "var", control.free_port(), control.free_port()
    registry_uri, monitor_url = str(var / "registry"), f"http://127.0.0.1:{monitor_port}"
    # Rules that decide on a month of the 10% slice: at most 400 labelled rows per version.
    rules = ["min_labelled_rows=100", "min_class_rows=10", "max_labelled_rows=400", "min_effect=0.03"]
    monitor = monitor_control.start(runtime_python("monitor"), str(tmp_path / "monitor"), monitor_port,
                                    str(tmp_path / "monitor.log"), SPEC, registry_uri=registry_uri,
                                    extra=[option for rule in rules for option in ("--experiment", rule)])
    serving_dir = os.path.join(str(var), "serving", MODEL)
    try:
        code, _ = run_window(var, "2013-01:2013-04", sliced_source, port, payload_logger_url=monitor_url)
        assert code == 0 and registry.current(registry_uri, MODEL)["version"] == "v0001"
        code, facts = run_window(var, "2013-02:2013-05", sliced_source, port, payload_logger_url=monitor_url,
                                 canary_traffic_percent="50", metric_max_change="1.0")
        assert code == 0, facts
        store = registry.open_registry(registry_uri)
        assert store.current(MODEL)["version"] == "v0001"  # production untouched by the deployment
        canary = store.canary(MODEL)
        assert canary["version"] == "v0002" and canary["traffic_percent"] == 50
        assert canary["experiment"]["production_version"] == "v0001"
        url = control.read_state(serving_dir)["url"]
        assert control.served_version(url, MODEL, probe="candidate") == "v0002"
        assert control.served_version(url, MODEL) == "v0001"

        truth = str(tmp_path / "truth.csv")
        replayed = subprocess.run(
            [runtime_python("serve"), "-m", "components.model_server.replay",
             os.path.join(sliced_source, "2013-05", SPAN_FILE), "--spec", SPEC,
             "--url", control.read_state(serving_dir)["predict_url"], "--rows", "2000", "--ground-truth", truth],
            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT}, capture_output=True, text=True, check=True)
        served = json.loads(replayed.stdout.strip().splitlines()[-1])["rows_by_version"]
        assert set(served) == {"v0001", "v0002"} and min(served.values()) > 700, served
        # Every served row's events have reached the monitor and been joined before the labels are posted.
        deadline = time.monotonic() + 60
        while monitor_control.request("GET", f"{monitor_url}/v1/status")[1]["pending"]["rows"] < sum(served.values()):
            assert time.monotonic() < deadline, "the payload logger's events did not all reach the monitor"
            time.sleep(0.1)
        with open(truth, "rb") as handle:
            status, stored = monitor_control.request("POST", f"{monitor_url}/v1/ground-truth", handle.read(),
                                                     "text/csv")
        assert status == 200, stored
        _, experiment = monitor_control.request("GET", f"{monitor_url}/v1/experiment")
        assert len(experiment["decisions"]) == 1, experiment["last_look"]
        decision = experiment["decisions"][0]
        arms = decision["statistics"]["arms"]
        assert {arms["production"]["version"], arms["candidate"]["version"]} == {"v0001", "v0002"}
        assert min(arms["production"]["labelled_rows"], arms["candidate"]["labelled_rows"]) >= 400
        assert arms["candidate"]["requests"] > 20 and arms["candidate"]["errors"] == 0
        production = "v0002" if decision["outcome"] == "promote" else "v0001"
        assert decision["outcome"] in ("promote", "roll_back"), decision
        assert store.current(MODEL)["version"] == production and store.canary(MODEL) is None
        control.wait_version(url, MODEL, production)
        control.wait_version(url, MODEL, production, probe="candidate")  # the experiment ended in the server
    finally:
        monitor_control.stop(monitor)
        control.stop(serving_dir)
