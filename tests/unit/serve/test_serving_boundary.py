"""The serving boundary on a real model server: the schema's skew guard, loopback only, and V2 JSON
from tritonclient with and without binary tensors."""


import numpy as np
import pytest

from components.model_server import control


def _row(samples, **changes):
    return {**samples["instances"][0], **changes}


@pytest.mark.parametrize("feature, value, words", [
    ("distance", 4983 * 5280, "above the schema's maximum 6000"),
    ("pressure", 29.9, "below the schema's minimum 870"),
    ("month", 13, "above the schema's maximum 12"),
    ("carrier", "ZZ", "not one of the schema's 16 values"),
    ("origin", "BOS", "not one of the schema's 3 values"),
])
def test_values_outside_the_schema_are_refused_naming_the_feature(server, samples, feature, value, words):
    status, body = control.http_json("POST", server["predict_url"], {"instances": [_row(samples, **{feature: value})]})
    assert status == 400 and feature in body["error"] and words in body["error"], body
    assert control.http_json("POST", server["predict_url"], {"instances": [_row(samples)]})[0] == 200  # still up


def test_what_validation_lets_through_is_served(server, samples):
    """Missing values, and a destination outside 2013's list (the schema allows 1% of those), are served."""
    rows = [_row(samples, temp=None, pressure=None), _row(samples, dest="XXX"), _row(samples, humid=100.0)]
    status, body = control.http_json("POST", server["predict_url"], {"instances": rows})
    assert status == 200 and len(body["probabilities"]) == 3, body


def test_v2_requests_meet_the_same_guard(server, samples):
    row = _row(samples, wind_speed=900.0)
    inputs = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
              for k, v in row.items()]
    status, body = control.http_json("POST", f"{server['url']}/v2/models/flights-delay/infer", {"inputs": inputs})
    assert status == 400 and "wind_speed" in body["error"], body


def _listening_addresses(port):
    """Local addresses of the TCP sockets listening on ``port`` (IPv4, from /proc/net/tcp)."""
    found = set()
    with open("/proc/net/tcp", encoding="ascii") as handle:
        for line in handle.readlines()[1:]:
            local, _, state = line.split()[1:4]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A = LISTEN
                found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_the_local_server_listens_on_loopback_only(server):
    assert _listening_addresses(server["port"]) == {"127.0.0.1"}


@pytest.mark.parametrize("binary", [True, False], ids=["binary tensors", "JSON without Content-Type"])
def test_tritonclient_http_in_both_modes(server, samples, binary):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=server["url"].split("://", 1)[1])
    row = samples["instances"][0]
    inputs = []
    for name, value in row.items():
        if isinstance(value, str):
            tensor = httpclient.InferInput(name, [1], "BYTES")
            tensor.set_data_from_numpy(np.array([value], dtype=object), binary_data=binary)
        else:
            tensor = httpclient.InferInput(name, [1], "FP64")
            tensor.set_data_from_numpy(np.array([np.nan if value is None else value], dtype=np.float64),
                                       binary_data=binary)
        inputs.append(tensor)
    outputs = [httpclient.InferRequestedOutput("probability", binary_data=binary)]
    result = client.infer("flights-delay", inputs, outputs=outputs)
    assert result.as_numpy("probability")[0] == pytest.approx(samples["probabilities"][0], abs=1e-9)
    client.close()


def test_a_v2_body_without_content_type_that_is_not_json_is_a_4xx_and_the_server_stays_up(server, samples):
    import http.client

    host, port = server["url"].split("://", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/v2/models/flights-delay/infer", skip_accept_encoding=True)
    body = b"{not json"
    connection.putheader("Content-Length", str(len(body)))  # and no Content-Type at all
    connection.endheaders(body)
    answer = connection.getresponse()
    assert 400 <= answer.status < 500, (answer.status, answer.read())
    connection.close()
    assert control.http_json("POST", server["predict_url"], {"instances": [_row(samples)]})[0] == 200
