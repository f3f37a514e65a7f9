"""The two other examples end to end: TFX's Chicago taxi trips (big tipper) and its regression variant (fare).

Each is landed from the tfx wheel (fetched without dependencies), validated against its curated
schema, trained, evaluated, blessed, infra-validated and deployed from its spec alone, then a
later window runs under the KFP backend's contract (the STAND-IN of test_backend_contract.py)
and is judged against the first model; the deployed model answers the example's request V1 and V2.
"""

import json
import os
import subprocess

import pytest

from components.dataset_spec import DatasetSpec
from components.model_server import control
from pipelines.local.runner import REPO_ROOT, runtime_python

from .conftest import run_window

pytestmark = pytest.mark.e2e

EXAMPLES = os.path.join(REPO_ROOT, "pipelines", "examples")


@pytest.fixture(scope="session")
def taxi_source(tmp_path_factory):
    """The sixteen quarters of TFX's taxi trips, landed as CSV spans."""
    source = tmp_path_factory.mktemp("taxi-source") / "taxi"
    subprocess.run([runtime_python("data"), "-m", "pipelines.examples.taxi.land", str(source)], check=True,
                   cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT}, stdout=subprocess.DEVNULL)
    return str(source)


def _v2_request(instances, spec):
    return {"inputs": [{"name": name, "shape": [len(instances)],
                        "datatype": "BYTES" if name in spec.categorical else "FP64",
                        "data": [row[name] for row in instances]} for name in spec.features]}


@pytest.mark.parametrize("example, metric, output", [("taxi", "auc", "probability"),
                                                      ("taxi_fare", "rmse", "prediction")])
def test_an_example_is_deployed_from_its_spec_and_a_later_window_is_judged_against_it(
        example, metric, output, taxi_source, tmp_path):
    path = os.path.join(EXAMPLES, example, "spec.toml")
    spec = DatasetSpec.load(path)
    var, port = tmp_path / "var", control.free_port()
    try:
        code, facts = run_window(var, spec.window, taxi_source, port, spec=path)
        assert code == 0, facts.get("failure")
        assert facts["data"]["spans"] == ["2014-Q1", "2014-Q2", "2014-Q3", "2014-Q4", "2015-Q1"]
        assert facts["metric"] == metric and metric in facts["candidate"]
        assert facts["blessing"]["blessed"] and facts["infra"]["blessed"]
        assert facts["deployment"]["pointer"]["version"] == "v0001"
        serving = facts["deployment"]["serving"]
        with open(spec.path(spec.serving["example_request"]), encoding="utf-8") as handle:
            request = json.load(handle)
        status, v1 = control.http_json("POST", serving["predict_url"], request)
        assert status == 200 and v1["model_version"] == "v0001", v1
        status, v2 = control.http_json("POST", serving["infer_url"], _v2_request(request["instances"], spec))
        assert status == 200, v2
        answered = next(o["data"] for o in v2["outputs"] if o["name"] == output)
        assert answered == v1["probabilities" if output == "probability" else "predictions"]

        code, later = run_window(var, "2014-Q2:2015-Q2", taxi_source, port, contract="kfp-backend", spec=path,
                                 metric_max_change="1000")
        assert code == 0, later.get("failure")
        assert later["baseline_version"] == "v0001" and metric in later["baseline"]
        assert later["deployment"]["pointer"]["version"] == "v0002"
    finally:
        control.stop(os.path.join(str(var), "serving", spec.model_name))
