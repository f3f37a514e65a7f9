"""KServe payload-logger CloudEvents: parse them and turn their bodies into prediction rows.

KServe's logger posts each inference request and response as a CloudEvent in
binary mode (``ce-type`` ``org.kubeflow.serving.inference.request`` or
``.response``, the same ``ce-id`` for both, the body as sent). Structured mode
is accepted too. Bodies may be V1 (``instances`` / ``predictions``) or V2 (Open
Inference Protocol ``inputs`` / ``outputs``).
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
EVENT_TYPES = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}


class EventError(ValueError):
    """An event the monitor cannot use; the message names the problem, ``reason`` its metric label."""

    def __init__(self, message: str, reason: str = "bad_body"):
        """Args: message: what is wrong; reason: ``not_cloudevent`` or ``bad_body``."""
        super().__init__(message)
        self.reason = reason


@dataclass
class InferenceEvent:
    """One logged request or response."""

    id: str
    kind: str
    time: float
    body: dict[str, Any]
    inference_service: str = ""
    #: The version that answered, when the logger says (our ``modelversion`` extension; KServe's does not).
    model_version: str = ""


def _event_time(value: Any) -> float:
    if not value:
        return time.time()
    try:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise EventError(f"event time {value!r} is not an RFC 3339 timestamp") from None


def parse_event(headers: Mapping[str, str], body: bytes) -> InferenceEvent:
    """Parses a payload-logger CloudEvent from an HTTP request.

    Raises:
        EventError: Not a CloudEvent, an event type other than inference
            request/response, no id, or a body that is not a JSON object.
    """
    from cloudevents.exceptions import GenericException
    from cloudevents.http import from_http

    try:
        event = from_http(dict(headers), body, data_unmarshaller=lambda raw: raw)
    except GenericException as error:
        raise EventError(f"not a CloudEvent: {error}", reason="not_cloudevent") from None
    kind = EVENT_TYPES.get(event["type"])
    if kind is None:
        raise EventError(f"event type {event['type']!r} is not one of {', '.join(EVENT_TYPES)}")
    if not event["id"]:
        raise EventError("the event has no id (ce-id): requests and responses are joined by it")
    data = event.data
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except ValueError as error:
            raise EventError(f"{kind} body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise EventError(f"{kind} body must be a JSON object, got {type(data).__name__}")
    extensions = event.get_attributes()
    return InferenceEvent(id=str(event["id"]), kind=kind, time=_event_time(extensions.get("time")), body=data,
                          inference_service=str(extensions.get("inferenceservicename", "")),
                          model_version=str(extensions.get("modelversion", "") or ""))


def request_rows(body: dict[str, Any], features: list[str]) -> list[dict[str, Any]]:
    """The feature rows of a V1 or V2 request body (values as sent; typing happens at analysis).

    Raises:
        EventError: Neither ``instances`` (V1) nor ``inputs`` (V2), or a shape the rows cannot be read from.
    """
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise EventError("request 'instances' must be a non-empty list")
        rows = []
        for index, instance in enumerate(instances):
            if isinstance(instance, dict):
                rows.append({name: instance.get(name) for name in features})
            elif isinstance(instance, list) and len(instance) == len(features):
                rows.append(dict(zip(features, instance)))
            else:
                raise EventError(f"request instance {index} is neither an object of named features nor a list "
                                 f"of {len(features)} values")
        return rows
    if "inputs" in body:
        inputs = body["inputs"]
        if not isinstance(inputs, list) or not inputs:
            raise EventError("request 'inputs' must be a non-empty list of tensors")
        columns: dict[str, list] = {}
        for tensor in inputs:
            if not isinstance(tensor, dict) or not isinstance(tensor.get("data"), list) or "name" not in tensor:
                raise EventError("each request input must be an object with 'name' and a 'data' list")
            columns[str(tensor["name"])] = [v[0] if isinstance(v, list) and len(v) == 1 else v
                                            for v in tensor["data"]]
        lengths = {len(values) for values in columns.values()}
        if len(lengths) != 1:
            raise EventError(f"request inputs hold different numbers of rows: {sorted(lengths)}")
        count = lengths.pop()
        return [{name: columns.get(name, [None] * count)[i] for name in features} for i in range(count)]
    raise EventError("request body has neither 'instances' (V1) nor 'inputs' (V2)")


def response_outputs(body: dict[str, Any], task: str = "binary_classification") -> tuple[list[float], str]:
    """The scores and model version of a V1 or V2 response body.

    A score is the positive class's probability (V1 ``probabilities``, V2 ``probability``) of a
    binary classification, the predicted value (V1 ``predictions``, V2 ``prediction``) of a regression.

    Raises:
        EventError: No scores in the body, or values that are not numbers.
    """
    v1, v2 = ("predictions", "prediction") if task == "regression" else ("probabilities", "probability")
    if v1 in body:
        scores = body[v1]
    elif "outputs" in body and isinstance(body["outputs"], list):
        named = {o.get("name"): o for o in body["outputs"] if isinstance(o, dict)}
        if v2 not in named:
            raise EventError(f"response outputs have no '{v2}' tensor")
        scores = named[v2].get("data")
    else:
        raise EventError(f"response body has neither '{v1}' (V1) nor 'outputs' (V2)")
    if not isinstance(scores, list) or not all(
            isinstance(p, (int, float)) and not isinstance(p, bool) for p in scores):
        raise EventError(f"response {v1} must be a list of numbers")
    return [float(p) for p in scores], str(body.get("model_version") or "")
