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
