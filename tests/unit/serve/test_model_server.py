import json
import urllib.request

import pytest

from components.model_server import control


def _post_raw(url, body: bytes, content_type="application/json"):
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_predictions_match_the_training_runtime(server, samples):
    status, body = control.http_json("POST", server["predict_url"], {"instances": samples["instances"]})
    assert status == 200
    assert body["probabilities"] == pytest.approx(samples["probabilities"], abs=1e-12)
    assert body["predictions"] == [int(p >= 0.5) for p in samples["probabilities"]]


def test_positional_instances_follow_model_json_order(server, samples, trained):
    from components import model_files

    features = model_files.read_info(trained[0])["features"]
    row = [samples["instances"][0][name] for name in features]
    status, body = control.http_json("POST", server["predict_url"], {"instances": [row]})
    assert status == 200 and body["probabilities"][0] == pytest.approx(samples["probabilities"][0])


def _instance(samples, **changes):
    row = dict(samples["instances"][0])
    for key, value in changes.items():
        if value is KeyError:
            row.pop(key)
        else:
            row[key] = value
    return row


BAD_REQUESTS = {
    "malformed JSON": (b'{"instances": [', "Unrecognized request format"),
    "no instances": (b'{"rows": []}', "'instances'"),
    "empty instances": (b'{"instances": []}', "non-empty list"),
    "not a list": (b'{"instances": 3}', '"instances" to be a list'),
    "wrong number of values": (b'{"instances": [[1, 2, 3]]}', "expected 16 values"),
    "NaN literal": (b'{"instances": [[' + b'"UA","EWR","ORD",' + b"NaN," + b"1," * 11 + b"1]]}",
                    "Unrecognized request format"),
    "infinite number": (b'{"instances": [[' + b'"UA","EWR","ORD",' + b"1e999," + b"1," * 11 + b"1]]}", "infinity"),
}


@pytest.mark.parametrize("kind", sorted(BAD_REQUESTS))
def test_bad_requests_get_400_naming_the_problem(server, samples, kind):
    body, message = BAD_REQUESTS[kind]
    status, answer = _post_raw(server["predict_url"], body)
    assert status == 400, answer
    assert message in answer["error"]
    assert control.http_json("POST", server["predict_url"], {"instances": samples["instances"][:1]})[0] == 200


@pytest.mark.parametrize("change, message", [
    ({"seat": 1.0}, "unknown feature(s) seat"),
    ({"carrier": KeyError}, "missing feature(s) carrier"),
    ({"carrier": 7}, "'carrier' must be a string"),
    ({"distance": "far"}, "'distance' must be a number"),
    ({"distance": True}, "'distance' must be a number"),
])
def test_bad_features_get_400_naming_the_feature(server, samples, change, message):
    status, answer = control.http_json("POST", server["predict_url"], {"instances": [_instance(samples, **change)]})
    assert status == 400 and message in answer["error"]


def test_missing_values_as_null_are_served(server, samples):
    status, body = control.http_json("POST", server["predict_url"],
                                     {"instances": [_instance(samples, temp=None, dest=None)]})
    assert status == 200 and 0 <= body["probabilities"][0] <= 1


def test_unknown_category_is_served_not_refused(server, samples):
    status, _ = control.http_json("POST", server["predict_url"], {"instances": [_instance(samples, dest="XYZ")]})
    assert status == 200
