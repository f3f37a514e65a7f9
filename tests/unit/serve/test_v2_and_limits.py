"""V2 (Open Inference Protocol) requests, size limit and Prometheus metrics on a real server."""

import urllib.request

import pytest

from components.model_server import control


def _v2_inputs(samples, info, rows=3):
    inputs = []
    for name in info["features"]:
        values = [row[name] for row in samples["instances"][:rows]]
        if name in info["categorical_features"]:
            inputs.append({"name": name, "shape": [rows], "datatype": "BYTES", "data": values})
        else:
            inputs.append({"name": name, "shape": [rows, 1], "datatype": "FP64",
                           "data": [[v] if v is not None else [None] for v in values]})
    return inputs


@pytest.fixture(scope="module")
def info(trained):
    from components import model_files

    return model_files.read_info(trained[0])


def _infer_url(server):
    return f"{server['url']}/v2/models/flights-delay/infer"


def test_v2_infer_answers_like_the_training_runtime(server, samples, info):
    status, body = control.http_json("POST", _infer_url(server), {"inputs": _v2_inputs(samples, info)})
    assert status == 200, body
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["probability"]["data"] == pytest.approx(samples["probabilities"][:3], abs=1e-12)
    assert outputs["prediction"]["datatype"] == "INT64"


def test_v2_metadata_and_readiness(server, info):
    status, metadata = control.http_json("GET", f"{server['url']}/v2/models/flights-delay")
    assert status == 200 and [i["name"] for i in metadata["inputs"]] == info["features"]
    assert control.http_json("GET", f"{server['url']}/v2/models/flights-delay/ready")[0] == 200
    assert control.http_json("GET", f"{server['url']}/v2/health/ready")[0] == 200


def _broken(samples, info, change):
    inputs = _v2_inputs(samples, info)
    kind = change
    if kind == "wrong shape":
        inputs[3]["shape"] = [1, 3]
    elif kind == "rows differ":
        inputs[3] = {**inputs[3], "shape": [2, 1], "data": inputs[3]["data"][:2]}
    elif kind == "wrong datatype":
        inputs[0]["datatype"] = "FP32"
    elif kind == "string in numeric tensor":
        inputs[4] = {**inputs[4], "datatype": "BYTES"}
    elif kind == "missing input":
        inputs = inputs[1:]
    elif kind == "unknown input":
        inputs.append({"name": "seat", "shape": [3], "datatype": "FP64", "data": [1, 2, 3]})
    elif kind == "no inputs":
        inputs = []
    return {"inputs": inputs}


@pytest.mark.parametrize("change, message", [
    ("wrong shape", "expected [N] or [N, 1]"),
    ("rows differ", "rows"),
    ("wrong datatype", "expected BYTES"),
    ("string in numeric tensor", "expected a numeric datatype"),
    ("missing input", "missing input(s) carrier"),
    ("unknown input", "unknown input(s) seat"),
    ("no inputs", "no inputs"),
])
def test_v2_bad_requests_get_400_naming_the_problem(server, samples, info, change, message):
    status, body = control.http_json("POST", _infer_url(server), _broken(samples, info, change))
    assert 400 <= status < 500, body
    assert message in str(body), body
    assert control.http_json("POST", _infer_url(server), {"inputs": _v2_inputs(samples, info)})[0] == 200


def test_payload_over_the_limit_gets_413_and_the_server_stays_up(server, samples):
    import socket

    # Declare a 2 MiB body and send only the headers: the server answers before reading it.
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=10) as sock:
        sock.sendall(b"POST /v1/models/flights-delay:predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n")
        answer = b""
        while b"bytes" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and b"exceeds the limit of 1048576 bytes" in answer
    assert control.http_json("POST", server["predict_url"], {"instances": samples["instances"][:1]})[0] == 200


def test_prometheus_metrics_are_exposed(server, samples):
    from prometheus_client.parser import text_string_to_metric_families

    control.http_json("POST", server["predict_url"], {"instances": samples["instances"][:1]})
    with urllib.request.urlopen(f"{server['url']}/metrics", timeout=10) as response:
        families = {f.name for f in text_string_to_metric_families(response.read().decode())}
    assert any(name.startswith("request_predict") for name in families), sorted(families)[:20]


def test_v2_answers_are_rendered_as_kserve_renders_them_without_its_per_request_costs(server, samples, info):
    """The lean app (components/model_server/asgi.py): orjson renders V2 answers as kserve's own path would
    (FastAPI's jsonable_encoder, then ORJSONResponse), and no timing line is computed and logged per request."""
    import json

    import orjson
    from fastapi.encoders import jsonable_encoder
    from kserve.protocol.rest.v2_datamodels import InferenceResponse

    data = json.dumps({"inputs": _v2_inputs(samples, info)}).encode()
    request = urllib.request.Request(_infer_url(server), data=data, headers={"Content-Type": "application/json"},
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        body, content_type = response.read(), response.headers["Content-Type"]
    assert content_type == "application/json"
    rendered = orjson.dumps(jsonable_encoder(InferenceResponse.model_validate(orjson.loads(body))),
                            option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    assert body == rendered and b'"parameters":null' in body  # every field, in the model's order
    control.http_json("POST", server["predict_url"], {"instances": samples["instances"][:1]})
    with open(server["log"], encoding="utf-8") as handle:
        log = handle.read()
    assert "serving flights-delay from" in log  # the server's own lines are there
    assert "kserve.trace" not in log  # kserve's TimingMiddleware: gone
    assert "POST /v1/models/flights-delay" not in log  # no access log unless asked (--access-log)


def test_the_access_log_is_there_when_asked(trained, tmp_path, samples):
    folder, _ = trained
    port = control.free_port()
    log_path = str(tmp_path / "server.log")
    process = control.start_process(["--model-dir", folder], "flights-delay", port, log_path,
                                    extra_args=["--access-log"])
    try:
        control.wait_ready(f"http://127.0.0.1:{port}", "flights-delay", 60, process)
        assert control.http_json("POST", f"http://127.0.0.1:{port}/v1/models/flights-delay:predict",
                                 {"instances": samples["instances"][:1]})[0] == 200
    finally:
        control.stop_process(process.pid)
    with open(log_path, encoding="utf-8") as handle:
        assert '"POST /v1/models/flights-delay%3Apredict HTTP/1.1" 200' in handle.read()
