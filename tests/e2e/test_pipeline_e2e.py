"""The CT pipeline end to end: deploy, compare with production, and refuse bad data or bad models."""

import json
import os
import subprocess

import pytest

from components import registry
from components.model_server import control
from pipelines.ct.spec import step_names

from .conftest import copy_source, feature_url, lineage, run_window

pytestmark = pytest.mark.e2e
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "pipelines", "examples", "flights", "request.json")


def _serving_state(var):
    return control.read_state(os.path.join(str(var), "serving", "flights-delay"))


def _weather(var, origins, hours):
    """The weather Feast's feature server holds for (origin, local hour) keys: (values by feature, found)."""
    from components.feature_lookup import FeatureLookup
    from pipelines.examples.flights import dataset

    return FeatureLookup(feature_url(var)).lookup(dataset.WEATHER_VIEW, dataset.WEATHER_FEATURES,
                                                  {"origin": list(origins), dataset.WEATHER_HOUR: list(hours)})


def _hour(flight):
    from pipelines.examples.flights import dataset

    return dataset.weather_hour(2013, int(flight["month"]), int(flight["day"]), int(flight["sched_dep_time"]) // 100)


def _current(var):
    return registry.current(os.path.join(str(var), "registry"), "flights-delay")


def test_first_window_trains_blesses_deploys_and_serves(deployed):
    facts = deployed["facts"]
    assert deployed["code"] == 0
    assert [s["step"] for s in facts["steps"]] == step_names()  # every step of the compiled pipeline, in order
    assert {s["runtime"] for s in facts["steps"]} == {"data", "feature", "train", "serve"}
    assert facts["data"]["spans"] == ["2013-01", "2013-02", "2013-03", "2013-04"]
    assert facts["schema_anomalies"] == {} and facts["baseline"] is None
    assert facts["blessing"]["blessed"] and facts["infra"]["blessed"]
    assert facts["deployment"]["pointer"]["version"] == "v0001"
    state = _serving_state(deployed["var"])
    with open(EXAMPLE, encoding="utf-8") as handle:
        example = json.load(handle)
    assert "temp" not in example["instances"][0]  # the caller sends the flight; the feature store the weather
    status, body = control.http_json("POST", state["predict_url"], example)
    assert status == 200 and 0 <= body["probabilities"][0] <= 1, body
    row = example["instances"][0]
    v2 = {"inputs": [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
                     for k, v in row.items()]}
    status, answer = control.http_json("POST", state["infer_url"], v2)
    assert status == 200
    assert next(o["data"][0] for o in answer["outputs"] if o["name"] == "probability") == body["probabilities"][0]
    # A request that still carries the weather is served as sent: the stored readings give the same answer.
    from pipelines.examples.flights import dataset

    values, found = _weather(deployed["var"], [row["origin"]], [_hour(row)])
    assert found == [True]
    full = {**row, **{name: values[name][0] for name in dataset.WEATHER_FEATURES}}
    assert control.http_json("POST", state["predict_url"], {"instances": [full]})[1]["probabilities"] == \
        body["probabilities"]
    changed = {**full, "temp": full["temp"] - 30, "precip": 0.5, "visib": 1.0}
    assert control.http_json("POST", state["predict_url"], {"instances": [changed]})[1]["probabilities"] != \
        body["probabilities"]


def test_served_weather_and_predictions_equal_the_training_ones_bit_for_bit(deployed, tmp_path):
    """Skew: for 600 test-span flights sent without weather, the features served are the ones trained on
    and the predictions those of the training runtime, bit for bit."""
    import glob

    from pipelines.examples.flights import dataset
    from pipelines.local.runner import REPO_ROOT, runtime_python

    var = str(deployed["var"])
    joined = sorted(glob.glob(os.path.join(var, "runs", "*", "*", "join-features", "joined", "2013-04.parquet")))[0]
    model_dir = _current(var)["model_dir"]
    out = tmp_path / "training_side.json"
    subprocess.run([runtime_python("train"), os.path.join(REPO_ROOT, "tests", "e2e", "training_side.py"), joined,
                    model_dir, "600", str(out)], cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT},
                   check=True)
    with open(out, encoding="utf-8") as handle:
        trained = json.load(handle)
    instances = trained["instances"]
    assert all("temp" not in instance for instance in instances)
    served, found = _weather(var, [i["origin"] for i in instances], [_hour(i) for i in instances])
    for name in dataset.WEATHER_FEATURES:
        assert served[name] == trained["weather"][name], name  # floats through JSON: equal means bit for bit
    state = _serving_state(var)
    predicted = []
    for start in range(0, len(instances), 100):
        status, body = control.http_json("POST", state["predict_url"], {"instances": instances[start:start + 100]})
        assert status == 200, body
        predicted += body["probabilities"]
    assert predicted == trained["probabilities"]
    assert all(found)  # hours without a reading are stored as such: served as missing, as trained


def test_lookup_failures_are_clear_and_the_server_stays_up(deployed):
    """A flight the store holds no weather for gets a 400 naming it; a feature server that is down, a 503."""
    from pipelines.local.runner import REPO_ROOT, runtime_python

    state = _serving_state(deployed["var"])
    with open(EXAMPLE, encoding="utf-8") as handle:
        row = json.load(handle)["instances"][0]
    status, body = control.http_json("POST", state["predict_url"], {"instances": [row, {**row, "origin": "LGA",
                                                                                          "month": 11, "day": 30}]})
    assert status == 400 and "instance 1" in body["error"], body
    assert "origin 'LGA', weather_hour '2013-11-30T" in body["error"], body  # an hour the store never held
    status, body = control.http_json("POST", state["predict_url"], {"instances": [{**row, "month": 2, "day": 30}]})
    assert status == 400 and "instance 0" in body["error"] and "day=30.0" in body["error"], body  # no such date
    status, body = control.http_json("POST", state["predict_url"], {"instances": [{**row, "origin": None}]})
    assert status == 400 and "'origin' is null" in body["error"], body
    repo = os.path.join(str(deployed["var"]), "feature_store")
    feature_store = [runtime_python("feature"), "-m", "components.feature_store"]
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    subprocess.run([*feature_store, "stop", "--repo", repo], cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    try:
        status, body = control.http_json("POST", state["predict_url"], {"instances": [row]})
        assert status == 503 and "cannot be looked up" in body["error"], body
        assert control.http_json("GET", f"{state['url']}/v1/models/flights-delay")[0] == 200
    finally:
        subprocess.run([*feature_store, "start", "--repo", repo, "--url", feature_url(deployed["var"])],
                       cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    assert control.http_json("POST", state["predict_url"], {"instances": [row]})[0] == 200


def test_next_window_is_compared_with_the_deployed_model(deployed, sliced_source, tmp_path):
    code, facts = run_window(deployed["var"], "2013-02:2013-05", sliced_source, deployed["port"],
                             metric_max_change="1.0")
    assert code == 0
    assert facts["baseline_version"] == "v0001"
    assert facts["baseline"]["rows"] == facts["candidate"]["rows"]  # same test span
    assert "vs production" in facts["blessing"]["reasons"][1]
    assert _current(deployed["var"])["version"] == "v0002"
    assert _serving_state(deployed["var"])["version"] == "v0002"


#: The online store's reading of a May hour, before any corrupted feed was offered (filled on first use).
_CLEAN_READING = None


@pytest.fixture(autouse=True)
def _clean_reading(deployed):
    global _CLEAN_READING
    if _CLEAN_READING is None:
        _CLEAN_READING = _weather(deployed["var"], ["JFK"], ["2013-05-10T12"])
        assert _CLEAN_READING[1] == [True]


def _catalogue():
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from span_tools import CORRUPTIONS, FILE_CORRUPTIONS

    cases = [pytest.param(kind, "validate-data", (feature, anomaly), id=kind)
             for kind, (_, feature, anomaly, _) in sorted(CORRUPTIONS.items())]
    cases += [pytest.param(kind, "extract", ("flights.parquet", words), id=kind)
              for kind, (_, words, _) in sorted(FILE_CORRUPTIONS.items())]
    return cases


@pytest.mark.parametrize("kind, stopped_at, named", _catalogue())
def test_bad_data_stops_before_training_and_leaves_serving_untouched(deployed, sliced_source, tmp_path,
                                                                     kind, stopped_at, named):
    """Every corruption of the catalogue (tests/span_tools.py), in the test span of a real window."""
    before_pointer, before_state = _current(deployed["var"]), _serving_state(deployed["var"])
    source = copy_source(sliced_source, tmp_path / "source", span="2013-05", kind=kind)
    code, facts = run_window(deployed["var"], "2013-02:2013-05", source, deployed["port"])
    assert code == 1
    assert facts["failed_step"] == stopped_at
    assert "2013-05" in facts["failure"] and all(word in facts["failure"] for word in named), facts["failure"]
    if stopped_at == "validate-data":
        assert named[0] in json.dumps(facts["schema_anomalies"]["2013-05"])
    ran = {s["step"] for s in facts["steps"]}
    assert not ran & {"prepare", "train", "evaluate", "infra-validate", "deploy"}
    assert _current(deployed["var"]) == before_pointer
    after_state = _serving_state(deployed["var"])
    assert after_state == before_state and control.is_alive(after_state)
    assert control.http_json("GET", f"{after_state['url']}/v1/models/flights-delay")[0] == 200
    # Nothing of the refused feed reached the online store: the weather served is the one before.
    assert _weather(deployed["var"], ["JFK"], ["2013-05-10T12"]) == _CLEAN_READING


def test_good_data_in_other_valid_encodings_is_validated_trained_and_deployed(sliced_source, tmp_path):
    """The benign rewrites of tests/span_tools.py, one per span of a window: the run is the clean one's."""
    from span_tools import BENIGN_REWRITES

    from .conftest import data_python

    source = copy_source(sliced_source, tmp_path / "source")
    for span, kind in zip(["2013-01", "2013-02", "2013-03", "2013-04"], sorted(BENIGN_REWRITES)):
        data_python(os.path.join("tests", "span_tools.py"), source, span, kind)
    var, port = tmp_path / "var", control.free_port()
    try:
        code, facts = run_window(var, "2013-01:2013-04", source, port)
        assert code == 0, facts.get("failure")
        assert facts["schema_anomalies"] == {} and facts["blessing"]["blessed"]
        assert facts["deployment"]["pointer"]["version"] == "v0001"
    finally:
        control.stop(os.path.join(str(var), "serving", "flights-delay"))


def test_shuffled_label_candidate_is_not_blessed_and_not_deployed(deployed, sliced_source, tmp_path):
    before_pointer, before_state = _current(deployed["var"]), _serving_state(deployed["var"])
    source = copy_source(sliced_source, tmp_path / "source", span="2013-02,2013-03,2013-04",
                         kind="shuffle_labels")
    code, facts = run_window(deployed["var"], "2013-02:2013-05", source, deployed["port"])
    assert code == 0  # a run that refuses a model is a successful run
    assert not facts["blessing"]["blessed"]
    assert facts["candidate"]["auc"] < 0.56
    assert "value: AUC" in facts["blessing"]["reasons"][0] and "failed" in facts["blessing"]["reasons"][0]
    assert "deploy" not in {s["step"] for s in facts["steps"]}
    assert _current(deployed["var"]) == before_pointer
    assert _serving_state(deployed["var"]) == before_state


def test_lineage_answers_what_produced_the_serving_model(deployed, sliced_source):
    code, facts = run_window(deployed["var"], "2013-02:2013-05", sliced_source, deployed["port"],
                             metric_max_change="1.0")
    assert code == 0
    answer = lineage(deployed["var"], "serving")
    serving = _serving_state(deployed["var"])
    assert answer["version"] == serving["version"] == _current(deployed["var"])["version"]
    assert answer["spans"] == ["2013-02", "2013-03", "2013-04", "2013-05"]
    assert answer["data_hash"] == facts["data"]["data_hash"]
    assert answer["parameters"]["test_span"] == "2013-05" and answer["git_sha"]
    assert answer["features"]["feature_view"] == "origin_weather" and "temp" in answer["features"]["features"]
    materialized = answer["materialization"]
    assert materialized["feature_view"] == "origin_weather" and "2013-05" in materialized["online_spans"]
    assert set(answer["images"]) >= {"train", "evaluate", "deploy"}
    assert answer["test_metrics"]["auc"] == pytest.approx(facts["candidate"]["auc"])
    assert answer["baseline"]["version"] and answer["baseline"]["auc_on_same_test_span"] is not None
    runs = lineage(deployed["var"], "runs")
    assert len(runs) >= 2 and all(r["status"] in ("COMPLETE", "FAILED") for r in runs)


def test_served_path_equals_pipeline_predict_proba_over_a_year_of_rows(deployed, tmp_path):
    """The deployed model's compiled prediction path against Pipeline.predict_proba on every 2013 flight."""
    from pipelines.local.runner import REPO_ROOT, runtime_python

    from .conftest import data_python

    year = tmp_path / "flights"
    data_python("-m", "pipelines.examples.flights.land", str(year), "--months", "1-12", "--fraction", "1.0")
    model_dir = registry.current(os.path.join(str(deployed["var"]), "registry"), "flights-delay")["model_dir"]
    result = subprocess.run([runtime_python("serve"), "-m", "components.model_server", "compare", "--model-dir",
                             model_dir, "--source", str(year), "--spec",
                             os.path.join(REPO_ROOT, "pipelines", "examples", "flights", "spec.toml")],
                            cwd=REPO_ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": REPO_ROOT}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout)
    assert figures["spans"] == 12 and figures["rows"] > 330_000, figures
    assert figures["differing_rows"] == 0 and figures["path"].startswith("compiled"), figures


def test_the_html_artifacts_render_offline_in_a_browser(deployed, tmp_path):
    """Statistics view, validation report and lineage graph of a run, opened in headless Chromium."""
    import glob

    from browser import assert_renders_offline

    from pipelines.local.runner import REPO_ROOT, runtime_python

    var = str(deployed["var"])
    views = [path for name in ("statistics_view", "report")
             for path in glob.glob(os.path.join(var, "runs", "*", "*", "validate-data", name))]
    assert len(views) >= 2, views
    run_id = lineage(var, "runs")[-1]["run_id"]
    graph = tmp_path / "graph.html"
    subprocess.run([runtime_python("data"), "-m", "components.lineage", "--store",
                    os.path.join(var, "runs", "metadata.sqlite"), "graph", run_id, "-o", str(graph)],
                   cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT}, check=True, capture_output=True)
    for index, page in enumerate([*views, str(graph)]):
        assert_renders_offline(page, str(tmp_path / f"page-{index}.png"))


#: The outputs that are the run's results (not its logs, timings, paths or latencies), per step.
RESULTS = {"extract": ["dataset"], "join-features": ["joined"],
           "validate-data": ["schema", "statistics", "anomalies"],
           "prepare": ["train_data", "eval_data", "test_data"], "train": ["model"],
           "evaluate": ["evaluation", "metrics", "classification_metrics"]}


def _result_files(run_dir):
    """Relative path -> bytes of every result file of a run."""
    found = {}
    for step, outputs in RESULTS.items():
        task_dir = next(d for d in (os.path.join(root, step) for root, dirs, _ in os.walk(run_dir) if step in dirs))
        for output in outputs:
            path = os.path.join(task_dir, output)
            files = [path] if os.path.isfile(path) else [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs]
            for file in files:
                with open(file, "rb") as handle:
                    found[os.path.relpath(file, os.path.dirname(task_dir))] = handle.read()
    return found


def test_warm_runtimes_give_the_outputs_of_fresh_processes_bit_for_bit(deployed, sliced_source, tmp_path):
    """make run forks each task from a warm process of its runtime (pipelines/local/warm.py); WARM=false starts
    every task afresh: the same window on the same data gives the same bytes."""
    var, port = tmp_path / "var", control.free_port()
    try:
        code, facts = run_window(var, "2013-01:2013-04", sliced_source, port, run_args=["--no-warm"])
    finally:
        control.stop(os.path.join(str(var), "serving", "flights-delay"))
    assert code == 0 and deployed["code"] == 0
    with open(os.path.join(deployed["facts"]["run_dir"], "run.json"), encoding="utf-8") as handle:
        assert json.load(handle)["warm_runtimes"] == ["data", "feature", "serve", "train"]
    with open(os.path.join(facts["run_dir"], "run.json"), encoding="utf-8") as handle:
        assert "warm_runtimes" not in json.load(handle)
    warm, fresh = _result_files(deployed["facts"]["run_dir"]), _result_files(facts["run_dir"])
    assert len(warm) >= 20 and sorted(warm) == sorted(fresh)
    assert [name for name in warm if warm[name] != fresh[name] and "/statistics/" not in name] == []
    # TFDV picks and orders equally frequent string values of its top-k lists by Python's string hashing,
    # which is seeded per process: two fresh runs differ there too. Every count is the same.
    def counts(text):
        return [line for line in text.splitlines() if not line.strip().startswith((b"label:", b'value: "'))]

    for name in (n for n in warm if "/statistics/" in n):
        assert counts(warm[name]) == counts(fresh[name]), name
