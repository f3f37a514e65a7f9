"""A KServe model that serves the flights-delay sklearn pipeline, V1 and V2 (Open Inference) protocols.

V1: ``POST /v1/models/<name>:predict`` with ``{"instances": [{"carrier": "UA", ...}]}``
(named features) or lists in the order of ``model.json``. V2: ``POST
/v2/models/<name>/infer`` with one input tensor per feature (shape ``[N]`` or
``[N, 1]``; ``BYTES`` for categorical features, ``FP64``/``FP32``/``INT64``/``INT32``
for numeric ones). Bad requests are refused with ``InvalidInput`` (HTTP 400)
naming the problem, bodies over the size limit with 413: never a 500.

The server either serves a fixed model folder (infra validation) or follows a
registry's ``current.json`` (production): a new version is loaded beside the
old one and swapped in by one reference assignment, so no request is dropped.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time
from typing import Any, Optional

import kserve
from kserve.errors import InvalidInput

from components import dataset, model_files, registry
from components.model_server.payload_logger import REQUEST_TYPE, RESPONSE_TYPE, PayloadLogger, is_probe, request_id
from components.schema_domains import Domain, read_domains

NUMERIC_DATATYPES = {"FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT8", "UINT16", "UINT32",
                     "UINT64"}
DEFAULT_MAX_BODY_BYTES = 1 << 20


def _check_value(name: str, value: Any, categorical: bool, row: int) -> Any:
    if value is None:
        return None
    if categorical:
        if not isinstance(value, str):
            raise InvalidInput(f"instance {row}: feature {name!r} must be a string or null, "
                               f"got {type(value).__name__}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"instance {row}: feature {name!r} must be a number or null, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidInput(f"instance {row}: feature {name!r} must be finite, got {value}")
    return float(value)


def instances_to_rows(instances: Any, features: list[str], categorical: list[str]) -> list[dict[str, Any]]:
    """Checks V1 instances against the model's features and returns them as named rows.

    Raises:
        InvalidInput: Instances are missing or empty, a row has unknown or
            missing features, a wrong number of values, a wrong type or a
            non-finite number.
    """
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("'instances' must be a non-empty list")
    categorical_set = set(categorical)
    rows = []
    for index, instance in enumerate(instances):
        if isinstance(instance, dict):
            unknown = sorted(set(instance) - set(features))
            missing = [f for f in features if f not in instance]
            if unknown:
                raise InvalidInput(f"instance {index}: unknown feature(s) {', '.join(unknown)}; "
                                   f"expected {', '.join(features)}")
            if missing:
                raise InvalidInput(f"instance {index}: missing feature(s) {', '.join(missing)}")
            values = instance
        elif isinstance(instance, list):
            if len(instance) != len(features):
                raise InvalidInput(f"instance {index}: expected {len(features)} values "
                                   f"({', '.join(features)}), got {len(instance)}")
            values = dict(zip(features, instance))
        else:
            raise InvalidInput(f"instance {index}: must be an object of named features or a list of values")
        rows.append({name: _check_value(name, values[name], name in categorical_set, index) for name in features})
    return rows


def tensors_to_rows(inputs: list, features: list[str], categorical: list[str]) -> list[dict[str, Any]]:
    """Checks V2 input tensors (one per feature) and returns the rows they hold.

    Raises:
        InvalidInput: Unknown or missing tensors, a shape other than ``[N]`` or
            ``[N, 1]``, different N across tensors, a datatype that does not fit
            the feature, a wrong number of values, or a bad value.
    """
    if not inputs:
        raise InvalidInput("the request has no inputs; send one tensor per feature")
    by_name = {}
    for tensor in inputs:
        if tensor.name in by_name:
            raise InvalidInput(f"input {tensor.name!r} is given twice")
        by_name[tensor.name] = tensor
    unknown = sorted(set(by_name) - set(features))
    missing = [f for f in features if f not in by_name]
    if unknown:
        raise InvalidInput(f"unknown input(s) {', '.join(unknown)}; expected one per feature: {', '.join(features)}")
    if missing:
        raise InvalidInput(f"missing input(s) {', '.join(missing)}")
    rows_count = None
    columns = {}
    for name in features:
        tensor = by_name[name]
        shape = list(tensor.shape)
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
            raise InvalidInput(f"input {name!r} has shape {shape}; expected [N] or [N, 1] with N >= 1")
        if rows_count is None:
            rows_count = shape[0]
        elif shape[0] != rows_count:
            raise InvalidInput(f"input {name!r} has {shape[0]} rows, other inputs have {rows_count}")
        expected = "BYTES" if name in categorical else "a numeric datatype (FP64, FP32, INT64, ...)"
        if (name in categorical) != (tensor.datatype == "BYTES") or (
                name not in categorical and tensor.datatype not in NUMERIC_DATATYPES):
            raise InvalidInput(f"input {name!r} has datatype {tensor.datatype}; expected {expected}")
        data = tensor.data
        data = data.tolist() if hasattr(data, "tolist") else list(data)
        flat = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in data]
        if len(flat) != rows_count:
            raise InvalidInput(f"input {name!r} holds {len(flat)} values for shape {shape}")
        if name in categorical:
            flat = [v.decode() if isinstance(v, bytes) else v for v in flat]
        columns[name] = flat
    categorical_set = set(categorical)
    return [{name: _check_value(name, columns[name][i], name in categorical_set, i) for name in features}
            for i in range(rows_count)]


class LoadedModel:
    """A loaded model folder: the sklearn pipeline, its description and version."""

    def __init__(self, model_dir: str, version: str):
        """Loads ``model.joblib`` and ``model.json`` from ``model_dir``."""
        import joblib

        self.model_dir = model_dir
        self.version = version
        self.info = model_files.read_info(model_dir)
        self.pipeline = joblib.load(model_files.model_path(model_dir))

    def predict(self, rows: list[dict[str, Any]]):
        """Probabilities of delay for checked rows."""
        import numpy as np
        import pandas as pd

        numeric = set(self.info["numeric_features"])
        # Column arrays built directly: much cheaper per request than a frame of row dicts plus casts.
        columns = {name: (np.array([np.nan if r[name] is None else r[name] for r in rows], dtype="float64")
                          if name in numeric else np.array([r[name] for r in rows], dtype=object))
                   for name in self.info["features"]}
        return self.pipeline.predict_proba(pd.DataFrame(columns, copy=False))[:, 1]


def check_domains(rows: list[dict[str, Any]], domains: dict[str, Domain]) -> None:
    """The skew guard: refuses a row whose value lies outside the curated schema's domain.

    The domains are read from the same schema file that data validation uses
    (``components/schema_domains.py``), so serving takes nothing that validation would stop.

    Raises:
        InvalidInput: Naming the instance, the feature, the value and the domain.
    """
    for index, row in enumerate(rows):
        for name, value in row.items():
            domain = domains.get(name)
            problem = domain.violation(value) if domain is not None else None
            if problem:
                raise InvalidInput(f"instance {index}: feature {name!r}: {problem} (the data validation schema)")


class FlightsDelayModel(kserve.Model):
    """Serves a model folder, or the current version of a model in a registry."""

    def __init__(self, name: str, model_dir: Optional[str] = None, registry_uri: Optional[str] = None,
                 poll_seconds: float = 0.5, payload_logger=None, schema_path: Optional[str] = dataset.CURATED_SCHEMA):
        """Creates the model; ``load()`` reads it.

        Args:
            name: The model's name in URLs.
            model_dir: A fixed model folder.
            registry_uri: A registry whose current version is followed.
            poll_seconds: How often the registry pointer is read.
            payload_logger: A ``PayloadLogger`` receiving every request and response (None: no logging).
            schema_path: The data validation schema whose domains requests must respect (None: no guard).
        """
        super().__init__(name)
        self.domains = read_domains(schema_path) if schema_path else {}
        self.payload_logger = payload_logger
        if (model_dir is None) == (registry_uri is None):
            raise ValueError("give either model_dir or registry_uri")
        self.model_dir = model_dir
        self.registry_uri = registry_uri
        # Opened once: the follower reads the pointer every poll_seconds (an S3 store holds a client).
        self._registry = registry.open_registry(registry_uri) if registry_uri else None
        self.poll_seconds = poll_seconds
        self.current: Optional[LoadedModel] = None
        self._watcher: Optional[threading.Thread] = None

    def load(self) -> bool:
        """Loads the model (for a registry: the version ``current.json`` names) and starts following it."""
        if self.model_dir:
            self.current = LoadedModel(self.model_dir, os.path.basename(os.path.normpath(self.model_dir)))
        else:
            pointer = self._registry.current(self.name)
            if pointer is None:
                raise RuntimeError(f"registry {self.registry_uri} has no current version of {self.name}")
            self.current = self._load_version(pointer["version"])
            self._watcher = threading.Thread(target=self._follow, daemon=True, name="follow-registry")
            self._watcher.start()
        self.ready = True
        return self.ready

    def _load_version(self, version: str) -> LoadedModel:
        """Loads a registry version (downloaded once into a cache when the registry is on S3)."""
        cache = os.path.join(tempfile.gettempdir(), "kfp-ct-registry-cache")
        return LoadedModel(registry.local_copy(self._registry, self.name, version, cache), version)

    def _follow(self) -> None:
        while True:
            time.sleep(self.poll_seconds)
            try:
                pointer = self._registry.current(self.name)
                if pointer and pointer["version"] != self.current.version:
                    # Load beside the serving model, then swap the reference: requests in
                    # flight finish on the old one, new ones get the new one.
                    self.current = self._load_version(pointer["version"])
                    print(f"now serving {self.name} {pointer['version']}", flush=True)
            except Exception as error:  # noqa: BLE001 - keep serving the loaded version
                print(f"could not switch to the registry's current version: {error}", flush=True)

    def get_input_types(self) -> list[dict]:
        """V2 metadata: one input tensor per feature."""
        info = self.current.info
        return [{"name": f, "datatype": "BYTES" if f in info["categorical_features"] else "FP64", "shape": [-1]}
                for f in info["features"]]

    def get_output_types(self) -> list[dict]:
        """V2 metadata: probability and 0/1 prediction per row."""
        return [{"name": "probability", "datatype": "FP64", "shape": [-1]},
                {"name": "prediction", "datatype": "INT64", "shape": [-1]}]

    def predict(self, payload: Any, headers: Optional[dict[str, str]] = None) -> Any:
        """V1 (dict) or V2 (InferRequest) prediction; logged to the monitor like KServe's payload logger."""
        if self.payload_logger is None or is_probe(headers):
            return self._predict(payload)

        event_id = request_id(headers)
        # Like KServe's logger: the request is logged as received, the response only when it succeeded.
        request_body = _rest_body(payload)
        if request_body is not None:
            self.payload_logger.log(REQUEST_TYPE, event_id, request_body)
        response = self._predict(payload)
        response_body = _rest_body(response)
        if request_body is not None and response_body is not None:
            self.payload_logger.log(RESPONSE_TYPE, event_id, response_body)
        return response

    def _predict(self, payload: Any) -> Any:
        model = self.current
        if isinstance(payload, kserve.InferRequest):
            rows = tensors_to_rows(payload.inputs, model.info["features"], model.info["categorical_features"])
            check_domains(rows, self.domains)
            probabilities = model.predict(rows)
            outputs = [kserve.InferOutput("probability", [len(rows)], "FP64", [float(p) for p in probabilities]),
                       kserve.InferOutput("prediction", [len(rows)], "INT64", [int(p >= 0.5) for p in probabilities])]
            return kserve.InferResponse(response_id=payload.id or "", model_name=self.name,
                                        model_version=model.version, infer_outputs=outputs)
        payload = _decoded(payload)
        if not isinstance(payload, dict) or "instances" not in payload:
            raise InvalidInput("request body must be a JSON object with 'instances'")
        rows = instances_to_rows(payload["instances"], model.info["features"], model.info["categorical_features"])
        check_domains(rows, self.domains)
        probabilities = model.predict(rows)
        return {"predictions": [int(p >= 0.5) for p in probabilities],
                "probabilities": [float(p) for p in probabilities], "model_version": model.version}


def _decoded(payload: Any) -> Any:
    if isinstance(payload, (bytes, str)):
        # Bodies sent without a JSON content type reach the model undecoded.
        try:
            return json.loads(payload)
        except ValueError as error:
            raise InvalidInput(f"request body is not valid JSON: {error}") from None
    return payload


def _rest_body(message: Any) -> Optional[dict]:
    """The JSON body of a V1 dict or a V2 request/response (None when it cannot be logged as JSON)."""
    try:
        if isinstance(message, (kserve.InferRequest, kserve.InferResponse)):
            body, _ = message.to_rest()
            if isinstance(body, dict) and isinstance(message, kserve.InferResponse):
                body.setdefault("model_version", message.model_version)
            return body if isinstance(body, dict) else None
        decoded = _decoded(message)
        return decoded if isinstance(decoded, dict) else None
    except (InvalidInput, TypeError, ValueError):
        return None


class BodySizeLimit:
    """ASGI middleware answering 413 to request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app, max_bytes: int):
        """Args: app: the ASGI app; max_bytes: the largest body accepted."""
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        """Checks Content-Length, then counts the streamed body."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send, int(declared))
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _BodyTooLargeError(received)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLargeError as error:
            await self._refuse(send, error.size)

    async def _refuse(self, send, size: int) -> None:
        body = json.dumps({"error": f"request body of {size} bytes exceeds the limit of {self.max_bytes} bytes"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body.encode()})


class _BodyTooLargeError(Exception):
    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


class V2JsonWithoutContentType:
    """ASGI middleware: a V2 infer request without a Content-Type or binary header is JSON (as Triton takes it).

    ``tritonclient.http`` without binary tensors sends JSON and no Content-Type; kserve 0.21
    hands such a body over as bytes and refuses it for the missing
    ``inference-header-content-length`` (kserve/protocol/dataplane.py decode_inference_request).
    """

    def __init__(self, app):
        """Args: app: the ASGI app."""
        self.app = app

    async def __call__(self, scope, receive, send):
        """Marks such a request as JSON, then passes it on."""
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path", "").endswith("/infer"):
            headers = scope.get("headers") or []
            names = {name.lower() for name, _ in headers}
            if b"content-type" not in names and b"inference-header-content-length" not in names:
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        return await self.app(scope, receive, send)


class _BoundModelServer(kserve.ModelServer):
    """kserve's model server on a chosen address.

    kserve 0.21's RESTServer binds 0.0.0.0 (kserve/protocol/rest/server.py); its uvicorn config
    is read only when serving begins, after ``start`` has built it and before the event loop
    runs, which is when this sets the host.
    """

    def __init__(self, host: str, **kwargs):
        super().__init__(**kwargs)
        self._bind_host = host

    def setup_event_loop(self):
        if getattr(self, "_rest_server", None) is not None:
            self._rest_server.config.host = self._bind_host
        super().setup_event_loop()


def serve(model_name: str, port: int, model_dir: Optional[str] = None, registry_uri: Optional[str] = None,
          max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, logger_url: Optional[str] = None,
          host: str = "127.0.0.1", schema_path: Optional[str] = dataset.CURATED_SCHEMA, threads: int = 1) -> None:
    """Starts the KServe model server (blocks until stopped).

    Args:
        model_name: The model's name in URLs.
        port: HTTP port.
        model_dir: A fixed model folder (or ``registry_uri``).
        registry_uri: A registry whose current version is followed.
        max_body_bytes: Largest request body accepted (413 beyond).
        logger_url: Where to log payloads (None: nowhere).
        host: Address to listen on: loopback unless all interfaces (0.0.0.0, in the cluster image) are asked for.
        schema_path: The data validation schema whose domains requests must respect (None: no guard).
        threads: OpenMP/BLAS threads per prediction. One by default: requests are small, and with
            one per core a busy neighbour stalls the pool (measured on 2 cores with two busy
            processes, single-row predict_proba in process: p99 33 ms with 2 threads, 11 ms with 1).
    """
    from kserve.model_server import app
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    payload_logger = None
    if logger_url:
        payload_logger = PayloadLogger(logger_url, model_name, source=f"http://localhost:{port}/")
        print(f"logging requests and responses to {logger_url}", flush=True)
    model = FlightsDelayModel(model_name, model_dir=model_dir, registry_uri=registry_uri,
                              payload_logger=payload_logger, schema_path=schema_path)
    model.load()
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(V2JsonWithoutContentType)
    source = model_dir or f"registry {registry_uri} ({model.current.version})"
    print(f"serving {model_name} from {source} on http://{host}:{port}", flush=True)
    # Per-request latency log lines cost more than the prediction of a single row.
    _BoundModelServer(host, http_port=port, enable_grpc=False, workers=1,
                      enable_latency_logging=False).start([model])
