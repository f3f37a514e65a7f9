"""Sends each served request and response to a monitor as KServe's payload logger does.

On a cluster KServe's agent sidecar posts these CloudEvents; the local model
server posts the same ones, so one monitor reads both: binary-mode CloudEvents
of type ``org.kubeflow.serving.inference.request`` / ``.response`` sharing the
request's ``ce-id``, with the ``inferenceservicename``, ``namespace``,
``component`` and ``endpoint`` extensions, the JSON body as data.

Events leave from a background thread through a bounded queue: a slow or
absent monitor never slows a prediction (events over the bound are dropped and
counted).
"""

from __future__ import annotations

import datetime
import json
import queue
import threading
import time
import uuid
from typing import Any, Optional

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
#: Header of our own health probes (version checks): like kubelet probes for KServe's logger, never logged.
PROBE_HEADER = "x-kfp-ct-probe"


def header_value(headers: Optional[dict[str, str]], name: str) -> Optional[str]:
    """A header's value, its name matched without case (None when absent)."""
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def probe_kind(headers: Optional[dict[str, str]]) -> Optional[str]:
    """What one of our health probes asks for (``version``, ``candidate``), or None for a real request."""
    return header_value(headers, PROBE_HEADER)


def is_probe(headers: Optional[dict[str, str]]) -> bool:
    """Tells whether a request is one of our health probes."""
    return probe_kind(headers) is not None


def request_id(headers: Optional[dict[str, str]]) -> str:
    """The request's ``ce-id`` header (as KServe's logger reads it), or a new UUID."""
    return header_value(headers, "ce-id") or str(uuid.uuid4())


def to_binary_event(event_type: str, event_id: str, body: dict[str, Any], source: str, inference_service: str,
                    namespace: str = "", component: str = "predictor", endpoint: str = "",
                    model_version: str = "", at: Optional[float] = None) -> tuple[dict, bytes]:
    """Headers and data of one payload-logger CloudEvent in binary mode.

    ``model_version`` (ours, not KServe's) names the version that answers, on the request too;
    ``at`` (epoch seconds) is the event's ``time``: when the request arrived or the response left.
    """
    from cloudevents.conversion import to_binary
    from cloudevents.http import CloudEvent

    attributes = {"type": event_type, "source": source, "id": event_id, "datacontenttype": "application/json",
                  "inferenceservicename": inference_service, "namespace": namespace, "component": component,
                  "endpoint": endpoint}
    if model_version:
        attributes["modelversion"] = model_version
    if at is not None:
        attributes["time"] = datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="microseconds")
    return to_binary(CloudEvent(attributes, json.dumps(body).encode()))


class PayloadLogger:
    """Posts request/response events to ``url`` from a background thread."""

    def __init__(self, url: str, inference_service: str, source: str = "http://localhost:8080/",
                 max_queue: int = 10_000, timeout: float = 5.0):
        """Args: url: the monitor; inference_service: the model's name; source: the event source URI."""
        self.url = url
        self.inference_service = inference_service
        self.source = source
        self.timeout = timeout
        self.dropped = 0
        self.failed = 0
        self.sent = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._work, daemon=True, name="payload-logger")
        self._thread.start()

    def log(self, event_type: str, event_id: str, body: dict[str, Any], model_version: str = "") -> None:
        """Queues one event, timed now (dropped, and counted, when the queue is full)."""
        try:
            self._queue.put_nowait((event_type, event_id, body, model_version, time.time()))
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Waits until the queued events are sent (or failed); True when the queue emptied in time."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _work(self) -> None:
        import requests

        session = requests.Session()
        while True:
            event_type, event_id, body, model_version, at = self._queue.get()
            try:
                headers, data = to_binary_event(event_type, event_id, body, self.source, self.inference_service,
                                                model_version=model_version, at=at)
                response = session.post(self.url, headers=headers, data=data, timeout=self.timeout)
                if response.status_code >= 300:
                    self.failed += 1
                    print(f"payload logger: monitor answered {response.status_code}: {response.text[:200]}",
                          flush=True)
                else:
                    self.sent += 1
            except Exception as error:  # noqa: BLE001 - logging must never take the server down
                self.failed += 1
                if self.failed in (1, 10, 100) or self.failed % 1000 == 0:
                    print(f"payload logger: could not reach {self.url} ({self.failed} failures): {error}",
                          flush=True)
            finally:
                self._queue.task_done()
