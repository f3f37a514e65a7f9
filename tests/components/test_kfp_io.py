"""The executor output our programs write is what kfp.local (and the KFP launcher) read."""

import json

from google.protobuf import json_format
from kfp.local import executor_output_utils
from kfp.pipeline_spec import pipeline_spec_pb2

from components.kfp_io import Executor, run_component, uri_to_path


def _executor_input(tmp_path):
    return {
        "inputs": {"parameterValues": {"threshold": 0.5},
                   "artifacts": {"data": {"artifacts": [{"name": "data", "uri": str(tmp_path / "in"),
                                                         "metadata": {"rows": 3}}]}}},
        "outputs": {
            "artifacts": {"metrics": {"artifacts": [{"name": "metrics", "uri": str(tmp_path / "t" / "metrics"),
                                                     "type": {"schemaTitle": "system.Metrics"}}]}},
            "parameters": {"blessed": {"outputFile": str(tmp_path / "t" / "blessed")}},
            "outputFile": str(tmp_path / "t" / "executor_output.json"),
        },
    }


def test_executor_output_is_valid_kfp_executor_output(tmp_path):
    executor = Executor(_executor_input(tmp_path))
    assert executor.param("threshold") == 0.5 and executor.input_metadata("data") == {"rows": 3}
    executor.set_metadata("metrics", {"auc": 0.71, "nan": float("nan")})
    executor.set_parameter("blessed", True)
    executor.write()
    message = executor_output_utils.load_executor_output(str(tmp_path / "t" / "executor_output.json"))
    artifact = message.artifacts["metrics"].artifacts[0]
    assert artifact.metadata["auc"] == 0.71 and artifact.uri.endswith("metrics")
    assert message.parameter_values["blessed"].bool_value is True
    assert (tmp_path / "t" / "blessed").read_text() == "true"
    assert json.loads((tmp_path / "t" / "metrics").read_text())["auc"] == 0.71  # metadata-only artifacts get a file
    json_format.ParseDict(json.loads((tmp_path / "t" / "executor_output.json").read_text()),
                          pipeline_spec_pb2.ExecutorOutput())


def test_component_errors_fail_the_task_with_one_clear_line(tmp_path, capsys):
    from components.kfp_io import ComponentError

    def body(executor):
        raise ComponentError("span 2013-04 is empty")

    code = run_component("demo", body, ["--executor-input", json.dumps(_executor_input(tmp_path))])
    assert code == 1
    status = json.loads((tmp_path / "t" / "exit_status.json").read_text())
    assert status["exit_code"] == 1 and status["peak_rss_mb"] > 1  # this process's own VmHWM
    assert "[demo] FAILED: span 2013-04 is empty" in capsys.readouterr().err


def test_remote_uris_map_to_launcher_mounts():
    assert uri_to_path("s3://bucket/a/b") == "/s3/bucket/a/b"
    assert uri_to_path("gs://bucket/x") == "/gcs/bucket/x"
    assert uri_to_path("/tmp/x") == "/tmp/x"


def test_metadata_wrapped_by_the_kfp_backend_reads_as_written(tmp_path):
    """The v2 backend (converter.go StructValueToMLMDValue) hands lists back as {"list": [...]},
    dicts as {"struct": {...}}, bools as 0/1 and ints as floats; kfp.local hands them back as written."""
    written = {"spans": ["2013-01", "2013-02"], "hyperparameters": {"max_iter": 100}, "rows": 3, "ok": True}
    backend = {"spans": {"list": ["2013-01", "2013-02"]}, "hyperparameters": {"struct": {"max_iter": 100.0}},
               "rows": 3.0, "ok": 1.0}
    for metadata in (written, backend):
        executor_input = _executor_input(tmp_path)
        executor_input["inputs"]["artifacts"]["data"]["artifacts"][0]["metadata"] = metadata
        read = Executor(executor_input).input_metadata("data")
        assert read["spans"] == ["2013-01", "2013-02"] and read["hyperparameters"] == {"max_iter": 100}
        assert read["rows"] == 3 and read["ok"] == 1


def test_null_metadata_is_never_written_and_null_parameters_are_refused(tmp_path):
    import pytest

    executor = Executor(_executor_input(tmp_path))
    executor.set_metadata("metrics", {"auc": 0.7, "baseline_auc": 0.6})
    executor.set_metadata("metrics", {"baseline_auc": None, "loss": float("inf"), "curve": [1.0, float("nan")]})
    executor.write()
    metadata = json.loads((tmp_path / "t" / "executor_output.json").read_text())[
        "artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metadata == {"auc": 0.7, "curve": [1.0, None]}  # nested nulls are kept by the backend's struct
    with pytest.raises(ValueError, match="reserved"):
        executor.set_metadata("metrics", {"spans": {"list": [1]}})
    with pytest.raises(ValueError, match="no null"):
        executor.set_parameter("blessed", None)
