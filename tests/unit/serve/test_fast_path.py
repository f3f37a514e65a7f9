"""The model server's hot path: column-wise request checks and the compiled prediction path.

The compiled path must give exactly ``Pipeline.predict_proba``'s probabilities (the real
fitted pipeline, compared bit for bit), fall back when it cannot, and the column-wise checks
must refuse exactly what the row-by-row ones did, naming the same instance and feature.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from kserve.errors import InvalidInput

from components import model_files
from components.model_server import control
from components.model_server.inputs import check_domains, instances_to_columns
from components.model_server.model import CompiledPredictor, LoadedModel, compare_paths
from components.schema_domains import read_domains
from pipelines.examples.flights import dataset

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _hostile_frame(frame, rows=5000):
    """Rows of the training frame with unknown and missing categories, NaN and extreme numbers mixed in."""
    rng = np.random.default_rng(1)
    sample = frame.sample(rows, replace=True, random_state=1).reset_index(drop=True)
    for name in dataset.CATEGORICAL_FEATURES:
        values = sample[name].astype(object)
        values[rng.random(rows) < 0.1] = "never-seen"
        values[rng.random(rows) < 0.1] = None
        sample[name] = values
    for name in dataset.NUMERIC_FEATURES:
        values = sample[name].astype("float64")
        values[rng.random(rows) < 0.1] = np.nan
        values[rng.random(rows) < 0.02] = 1e300
        values[rng.random(rows) < 0.02] = -1e300
        sample[name] = values
    return sample


def test_compiled_path_is_bit_for_bit_pipeline_predict_proba(trained):
    folder, frame = trained
    model = LoadedModel(folder, "v")
    assert model.compiled is not None, model.path_note
    result = compare_paths(folder, _hostile_frame(frame))
    assert result == {"rows": 5000, "differing_rows": 0, "max_abs_difference": 0.0, "path": model.path_note}


def test_the_compare_command_agrees_and_names_the_path(trained, tmp_path):
    folder, frame = trained
    for month in ("2013-01", "2013-02"):
        (tmp_path / month).mkdir()
        _hostile_frame(frame, 500).to_parquet(tmp_path / month / "flights.parquet")
    result = subprocess.run([sys.executable, "-m", "components.model_server", "compare", "--model-dir", folder,
                             "--source", str(tmp_path), "--spec", f"{REPO_ROOT}/pipelines/examples/flights/spec.toml"],
                            capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    assert result.returncode == 0, result.stderr
    assert '"rows": 1000' in result.stdout and '"differing_rows": 0' in result.stdout, result.stdout


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_pipeline_of_another_shape_is_served_by_pipeline_predict_proba(trained, tmp_path, capsys):
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    folder, frame = trained
    fitted = joblib.load(model_files.model_path(folder))
    encoded = fitted.named_steps["encode"].transform(frame[dataset.FEATURES])
    other = Pipeline([("encode", fitted.named_steps["encode"]),
                      ("model", LogisticRegression(max_iter=200).fit(np.nan_to_num(encoded), frame[dataset.LABEL]))])
    shutil.copytree(folder, tmp_path / "m")
    joblib.dump(other, model_files.model_path(str(tmp_path / "m")))
    model = LoadedModel(str(tmp_path / "m"), "v")
    assert model.compiled is None and model.path_note == "Pipeline.predict_proba"
    assert "the compiled path is not used" in capsys.readouterr().out
    columns = instances_to_columns(frame[dataset.FEATURES].head(3).to_dict("records"), model.info["features"],
                                   model.info["categorical_features"])
    expected = other.predict_proba(frame[dataset.FEATURES].head(3))[:, 1]
    assert np.array_equal(model.predict(columns.values, columns.rows), expected)


def test_a_compiled_path_that_disagrees_at_load_is_not_used(trained, monkeypatch, capsys):
    folder, _ = trained
    original = CompiledPredictor.predict
    monkeypatch.setattr(CompiledPredictor, "predict",
                        lambda self, columns, rows, **way: original(self, columns, rows, **way) + 1e-15)
    model = LoadedModel(folder, "v")
    assert model.compiled is None
    assert "differs from Pipeline.predict_proba" in capsys.readouterr().out


def test_a_forest_that_disagrees_at_load_is_not_used(trained, monkeypatch, capsys):
    """The load-time probe checks the one-pass forest too, though its rows are more than the forest takes."""
    folder, _ = trained
    original = CompiledPredictor._through_forest

    def off(self, matrix, out):
        original(self, matrix, out)
        out[-1, -1] += 1e-12

    monkeypatch.setattr(CompiledPredictor, "_through_forest", off)
    assert LoadedModel(folder, "v").compiled is None
    assert "(forest)" in capsys.readouterr().out


@pytest.mark.parametrize("max_iter", [1, 2, 3, 7, 20])
def test_the_forest_gives_each_tree_s_output_for_every_request_size(tmp_path, max_iter):
    """One pass of the forest (routing nodes to each tree's root), tree by tree and the pipeline agree bit for bit,
    whatever the number of trees (a power of two or not, one alone) and of rows, hostile rows included."""
    from components.model_server.model import FOREST_BELOW_ROWS
    from tests.unit.serve.conftest import _build_model

    frame = _build_model(tmp_path, max_iter=max_iter)
    model = LoadedModel(str(tmp_path), "v")
    assert model.compiled is not None and len(model.compiled._trees) == max_iter, model.path_note
    hostile = _hostile_frame(frame, 3000)  # NaN and unknown categories: columns as compare_paths builds them
    columns = {name: (hostile[name].to_numpy(dtype="float64") if name in model.info["numeric_features"]
                      else [None if value is None or value != value else value for value in hostile[name]])
               for name in model.info["features"]}
    reference = model.reference_predict(columns)
    for rows in (1, 2, FOREST_BELOW_ROWS - 1, FOREST_BELOW_ROWS, 100, 3000):
        part = {name: values[:rows] for name, values in columns.items()}
        for way in (True, False, None):
            assert np.array_equal(model.compiled.predict(part, rows, forest=way), reference[:rows]), (rows, way)
    assert compare_paths(str(tmp_path), hostile)["differing_rows"] == 0
    assert model.compiled.predict({name: values[:0] for name, values in columns.items()}, 0).shape == (0,)


FEATURES = dataset.FEATURES
CATEGORICAL = dataset.CATEGORICAL_FEATURES


def _rows(samples, count=5):
    return [dict(row) for row in samples["instances"][:count]]


@pytest.mark.parametrize("feature, value, words", [
    ("temp", True, "must be a number or null, got bool"),
    ("temp", "21.0", "must be a number or null, got str"),
    ("temp", float("nan"), "must be finite"),
    ("temp", float("inf"), "must be finite"),
    ("temp", 10 ** 400, "must be finite"),
    ("carrier", 7, "must be a string or null, got int"),
    ("carrier", ["UA"], "must be a string or null, got list"),
])
def test_column_checks_name_the_first_bad_instance_and_feature(samples, feature, value, words):
    rows = _rows(samples)
    rows[3][feature] = value
    rows[4][feature] = value
    with pytest.raises(InvalidInput) as refused:
        instances_to_columns(rows, FEATURES, CATEGORICAL)
    assert f"instance 3: feature {feature!r}" in str(refused.value) and words in str(refused.value)


def test_objects_and_lists_may_be_mixed_and_give_the_same_columns(samples):
    rows = _rows(samples)
    mixed = [row if i % 2 else [row[f] for f in FEATURES] for i, row in enumerate(rows)]
    expected = instances_to_columns(rows, FEATURES, CATEGORICAL)
    got = instances_to_columns(mixed, FEATURES, CATEGORICAL)
    for name in FEATURES:
        assert np.array_equal(np.asarray(got.values[name], dtype=object), np.asarray(expected.values[name],
                                                                                     dtype=object))


@pytest.mark.parametrize("instances, words", [
    ([], "non-empty list"),
    ([{"carrier": "UA"}], "instance 0: missing feature(s)"),
    ([1], "instance 0: must be an object of named features or a list of values"),
    ([[1, 2]], "instance 0: expected 16 values"),
])
def test_shape_problems_are_named(instances, words):
    with pytest.raises(InvalidInput) as refused:
        instances_to_columns(instances, FEATURES, CATEGORICAL)
    assert words in str(refused.value)


def test_domain_guard_names_the_first_row_then_the_first_feature(samples):
    rows = _rows(samples)
    rows[2]["visib"] = 99.0
    rows[2]["month"] = 13
    rows[4]["carrier"] = "ZZ"
    columns = instances_to_columns(rows, FEATURES, CATEGORICAL)
    with pytest.raises(InvalidInput) as refused:
        check_domains(columns, read_domains(dataset.CURATED_SCHEMA))
    assert str(refused.value) == ("instance 2: feature 'month': 13.0 is above the schema's maximum 12 "
                                  "(the data validation schema)")


def test_a_huge_integer_is_a_400_and_the_server_stays_up(server, samples):
    import json
    import urllib.error
    import urllib.request

    row = {**samples["instances"][0]}
    body = json.dumps({"instances": [{**row, "temp": "HUGE"}]}).replace('"HUGE"', "1" + "0" * 400)
    request = urllib.request.Request(server["predict_url"], data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert 400 <= refused.value.code < 500
    assert control.http_json("POST", server["predict_url"], {"instances": [row]})[0] == 200


def _start_workers(folder, tmp_path, workers=2):
    port = control.free_port()
    log = tmp_path / "server.log"
    process = control.start_process(["--model-dir", folder], "flights-delay", port, str(log),
                                    extra_args=["--workers", str(workers)])
    return process, port, log


def _group(process):
    return subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True).stdout.split()


def test_workers_share_the_port_answer_alike_and_stop_together(trained, samples, tmp_path):
    folder, _ = trained
    process, port, log = _start_workers(folder, tmp_path)
    try:
        control.wait_ready(f"http://127.0.0.1:{port}", "flights-delay", 120, process)
        # Ready means every worker serves: the parent says so in its log before any worker answers ready.
        assert "all 2 workers serve" in log.read_text()
        url = f"http://127.0.0.1:{port}/v1/models/flights-delay:predict"
        answers = [control.http_json("POST", url, {"instances": samples["instances"][:5]}) for _ in range(20)]
        assert {status for status, _ in answers} == {200}
        assert all(body["probabilities"] == answers[0][1]["probabilities"] for _, body in answers)
        assert np.allclose(answers[0][1]["probabilities"], samples["probabilities"][:5], rtol=0, atol=0)
        assert len(_group(process)) == 3, _group(process)  # the parent and two forked servers
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()[-2000:]
        assert _group(process) == []
    finally:
        control.stop_process(process.pid)


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.7, 1.0, 1.5, 2.5])
def test_a_stop_asked_while_workers_load_ends_with_status_0(trained, tmp_path, delay):
    """However far each worker got (forked, importing, loading, starting kserve, serving), a stop ends the server.

    Its exit status is 0, and it ends well before the parent's grace period would have to kill a worker.
    """
    folder, _ = trained
    process, _, log = _start_workers(folder, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while "workers on" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log.read_text()[-2000:]
        assert "killed" not in log.read_text()
        assert _group(process) == []
    finally:
        control.stop_process(process.pid)


@pytest.mark.parametrize("delay", [0.5, 1.0, 1.5, 2.5])
def test_a_single_process_server_ends_when_stopped_in_any_phase(trained, tmp_path, delay):
    """kserve's own handler loses a SIGTERM between its start and uvicorn's: ours ends the server in every phase."""
    folder, _ = trained
    process = control.start_process(["--model-dir", folder], "flights-delay", control.free_port(),
                                    str(tmp_path / "server.log"))
    try:
        time.sleep(delay)
        os.kill(process.pid, signal.SIGTERM)
        # 0 once our handler is in place; -SIGTERM before the server code runs (the default action).
        assert process.wait(timeout=20) in (0, -signal.SIGTERM), (tmp_path / "server.log").read_text()[-2000:]
    finally:
        control.stop_process(process.pid)


def test_a_worker_that_dies_on_its_own_stops_the_others_and_the_exit_status_says_so(trained, tmp_path):
    folder, _ = trained
    process, port, log = _start_workers(folder, tmp_path)
    try:
        control.wait_ready(f"http://127.0.0.1:{port}", "flights-delay", 120, process)
        workers = [int(pid) for pid in _group(process) if int(pid) != process.pid]
        os.kill(workers[0], signal.SIGKILL)
        assert process.wait(timeout=60) == 128 + signal.SIGKILL
        assert f"worker {workers[0]} ended on its own (killed by signal 9)" in log.read_text()
        assert _group(process) == []
    finally:
        control.stop_process(process.pid)


def test_a_stop_between_kserve_starting_and_uvicorn_serving_is_not_lost():
    """The window kserve 0.21's handler loses (it stops only its multi-process and gRPC servers): ours ends uvicorn."""
    import types

    from components.model_server.server import _BoundModelServer

    uvicorn_server = types.SimpleNamespace(should_exit=False)
    server = _BoundModelServer.__new__(_BoundModelServer)  # only what the handler touches
    server._rest_server = types.SimpleNamespace(_server=uvicorn_server)
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
    previous = {signum: signal.getsignal(signum) for signum in handled}
    try:
        server.register_signal_handler()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # Python runs the handler between bytecodes of the main thread
        assert uvicorn_server.should_exit is True
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
