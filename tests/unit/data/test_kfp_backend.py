"""The KFP v2 backend stand-in converts and stores metadata as the Go backend does.

Rules from kubeflow/pipelines backend/src/v2/metadata/converter.go and client.go (2.5.0, the
same through 2.17.0). This is a stand-in: the Go driver and launcher cannot run here.
"""

import io
import json

import pytest
from google.protobuf import struct_pb2
from ml_metadata.proto import metadata_store_pb2 as pb

from components.lineage import kfp_backend
from components.lineage.store import connect


def _value(python):
    struct = struct_pb2.Struct()
    struct.update({"v": python})
    return struct.fields["v"]


def test_struct_values_convert_like_struct_value_to_mlmd_value():
    assert kfp_backend.struct_value_to_mlmd_value(_value("a")).string_value == "a"
    assert kfp_backend.struct_value_to_mlmd_value(_value(3)).double_value == 3.0
    assert kfp_backend.struct_value_to_mlmd_value(_value(True)).int_value == 1
    assert kfp_backend.struct_value_to_mlmd_value(_value(False)).WhichOneof("value") == "int_value"
    listed = kfp_backend.struct_value_to_mlmd_value(_value(["x", 1]))
    assert list(listed.struct_value.fields["list"].list_value) == ["x", 1.0]
    nested = kfp_backend.struct_value_to_mlmd_value(_value({"k": None}))
    assert nested.struct_value.fields["struct"].struct_value.fields["k"].WhichOneof("kind") == "null_value"
    with pytest.raises(kfp_backend.BackendError, match=r"unknown/unsupported value type \*structpb.Value_NullValue"):
        kfp_backend.struct_value_to_mlmd_value(_value(None))


def _executor_input(tmp_path):
    return {"inputs": {"parameterValues": {"min_auc": 0.6}},
            "outputs": {"artifacts": {"blessing": {"artifacts": [{"name": "blessing", "uri": str(tmp_path / "b"),
                                                                  "type": {"schemaTitle": "system.Artifact"}}]}},
                        "parameters": {"blessed": {"outputFile": str(tmp_path / "blessed")}},
                        "outputFile": str(tmp_path / "executor_output.json")}}


def _client(tmp_path):
    client = kfp_backend.BackendMetadataClient(connect(str(tmp_path / "mlmd.sqlite")))
    client.root_dag("ct", "run-1", "/root", {"trigger": "schedule"})
    return client


def test_a_null_metadata_value_fails_the_task_with_the_backends_error(tmp_path):
    client = _client(tmp_path)
    execution_id = client.create_execution("validate-model", "img", _executor_input(tmp_path))
    output = {"artifacts": {"blessing": {"artifacts": [{"uri": str(tmp_path / "b"),
                                                       "metadata": {"baseline_auc": None}}]}},
              "parameterValues": {"blessed": True}}
    answer = client.launch(execution_id, _executor_input(tmp_path), output, succeeded=True)
    assert not answer["ok"]
    assert answer["error"] == ("failed to execute component: unable to produce MLMD artifact for output 'blessing': "
                               "failed to convert RuntimeArtifact to MLMD artifact: unknown/unsupported value type "
                               "*structpb.Value_NullValue")
    [execution] = client.store.get_executions_by_id([execution_id])
    assert execution.last_known_state == pb.Execution.FAILED and "outputs" not in execution.custom_properties
    assert client.store.get_artifacts() == []


def test_downstream_tasks_get_metadata_as_mlmd_stored_it(tmp_path):
    client = _client(tmp_path)
    execution_id = client.create_execution("validate-model", "img", _executor_input(tmp_path))
    (tmp_path / "blessed").write_text("true")  # written to its file only: collectOutputParameters reads it
    output = {"artifacts": {"blessing": {"artifacts": [{"uri": str(tmp_path / "b"), "metadata": {
        "blessed": True, "reasons": ["ok"], "auc": 0.7, "rows": 3, "by_span": {"2013-01": 1}}}]}}}
    answer = client.launch(execution_id, _executor_input(tmp_path), output, succeeded=True)
    assert answer["ok"] and answer["executor_output"]["parameterValues"] == {"blessed": True}
    [artifact] = answer["executor_output"]["artifacts"]["blessing"]["artifacts"]
    assert artifact["name"].isdigit()  # the driver names an input artifact by its MLMD id
    assert artifact["metadata"] == {"blessed": 1.0, "reasons": {"list": ["ok"]}, "auc": 0.7, "rows": 3.0,
                                    "by_span": {"struct": {"2013-01": 1.0}}, "display_name": "blessing",
                                    "store_session_info": client.store_session_info}
    [execution] = client.store.get_executions_by_id([execution_id])
    assert execution.last_known_state == pb.Execution.COMPLETE


def test_a_program_that_fails_is_published_failed_without_outputs(tmp_path):
    client = _client(tmp_path)
    execution_id = client.create_execution("train", "img", _executor_input(tmp_path))
    assert client.launch(execution_id, _executor_input(tmp_path), None, succeeded=False) == {"ok": False, "error": None}
    [execution] = client.store.get_executions_by_id([execution_id])
    assert execution.last_known_state == pb.Execution.FAILED


def test_the_runner_talks_to_it_one_json_line_at_a_time(tmp_path):
    requests = [{"op": "root_dag", "pipeline_name": "ct", "run_id": "r", "pipeline_root": "/x", "parameters": {}},
                {"op": "create_execution", "task_name": "t", "image": "i", "executor_input": _executor_input(tmp_path)},
                {"op": "nonsense"},
                {"op": "finish", "succeeded": True}]
    out = io.StringIO()
    kfp_backend.serve(str(tmp_path / "s.sqlite"), io.StringIO("".join(json.dumps(r) + "\n" for r in requests)), out)
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [a["ok"] for a in answers] == [True, True, False, True]
    assert "unknown request 'nonsense'" in answers[2]["error"]
