"""A KServe model that serves a trained sklearn pipeline of any dataset spec, V1 and V2 (Open Inference) protocols.

V1: ``POST /v1/models/<name>:predict`` with ``{"instances": [{"<feature>": value, ...}]}``
(named features) or lists in the order of ``model.json``. V2: ``POST
/v2/models/<name>/infer`` with one input tensor per feature (shape ``[N]`` or
``[N, 1]``; ``BYTES`` for categorical features, ``FP64``/``FP32``/``INT64``/``INT32``
for numeric ones). A classifier answers the positive class' probability and the 0/1
prediction, a regressor the predicted value. Bad requests are refused with ``InvalidInput``
(HTTP 400) naming the problem, bodies over the size limit with 413: never a 500.

The server either serves a fixed model folder (infra validation) or follows a
registry's ``current.json`` (production): a new version is loaded beside the
old one and swapped in by one reference assignment, so no request is dropped.

Following a registry it also serves an online experiment: while ``canary.json`` names a
candidate with a ``traffic_percent``, that share of the requests goes to the candidate, the
rest to production. A request that carries ``x-experiment-key`` (a user or session id) always
reaches the same version for the same key and candidate; one without it is assigned at random.
Every response names the version that answered (``model_version``), and so does every
payload-log event (the response's body, and the request's ``modelversion`` extension).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, Optional

import kserve
from kserve.errors import InvalidInput

from components import registry
from components.body_limit import DEFAULT_MAX_BODY_BYTES, BodySizeLimit
from components.feature_lookup import FeatureLookup
from components.model_server.asgi import V2JsonWithoutContentType, build_lean_app
from components.model_server.features import add_looked_up, looked_up_features, sent_features
from components.model_server.inputs import check_domains, instances_to_columns, tensors_to_columns
from components.model_server.model import LoadedModel
from components.model_server.payload_logger import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    PayloadLogger,
    header_value,
    is_probe,
    probe_kind,
    request_id,
)
from components.schema_domains import read_domains

#: The request header whose value keeps a caller on one version during an experiment (sticky assignment).
EXPERIMENT_KEY_HEADER = "x-experiment-key"


class TabularModel(kserve.Model):
    """Serves a model folder, or the current version of a model in a registry."""

    def __init__(self, name: str, model_dir: Optional[str] = None, registry_uri: Optional[str] = None,
                 poll_seconds: float = 0.5, payload_logger=None, schema_path: Optional[str] = None,
                 threads: int = 1, compiled: bool = True, feature_server_url: Optional[str] = None,
                 peers_ready: Optional[Callable[[], bool]] = None):
        """Creates the model; ``load()`` reads it.

        Args:
            name: The model's name in URLs.
            model_dir: A fixed model folder.
            registry_uri: A registry whose current version is followed.
            poll_seconds: How often the registry pointer is read.
            payload_logger: A ``PayloadLogger`` receiving every request and response (None: no logging).
            schema_path: A data validation schema whose domains requests must respect (None: the schema
                in the served model's folder, the one it was trained under; no guard when it has none).
            threads: OpenMP threads per prediction.
            compiled: Predict through ``CompiledPredictor`` when it is proven equal at load
                (False: always ``Pipeline.predict_proba``).
            feature_server_url: Feast's feature server, where the features a request leaves out
                are looked up (None: requests carry every feature).
            peers_ready: For a worker of a multi-worker server: tells whether every worker serves
                (the model is healthy only then). None: a single process.
        """
        super().__init__(name)
        self.peers_ready = peers_ready
        self.feature_lookup = FeatureLookup(feature_server_url) if feature_server_url else None
        self.threads = threads
        self.compiled = compiled
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
        #: The running experiment: (candidate, its traffic percent), replaced whole; None: production only.
        self.experiment: Optional[tuple[LoadedModel, float]] = None
        self._watcher: Optional[threading.Thread] = None

    def load(self) -> bool:
        """Loads the model (for a registry: the version ``current.json`` names) and starts following it."""
        if self.model_dir:
            self.current = LoadedModel(self.model_dir, folder_version(self.model_dir), self.threads, self.compiled)
        else:
            pointer = self._registry.current(self.name)
            if pointer is None:
                raise RuntimeError(f"registry {self.registry_uri} has no current version of {self.name}")
            self.current = self._load_version(pointer["version"])
            self._follow_experiment()
            self._watcher = threading.Thread(target=self._follow, daemon=True, name="follow-registry")
            self._watcher.start()
        self.ready = True
        return self.ready

    async def healthy(self) -> bool:
        """Ready (kserve's model readiness, V1 and V2), and in a multi-worker server every worker serves."""
        return self.ready and (self.peers_ready is None or self.peers_ready())

    def _load_version(self, version: str) -> LoadedModel:
        """Loads a registry version (downloaded once into a cache when the registry is on S3)."""
        cache = os.path.join(tempfile.gettempdir(), "kfp-ct-registry-cache")
        return LoadedModel(registry.local_copy(self._registry, self.name, version, cache), version, self.threads,
                           self.compiled)

    def _follow(self) -> None:
        while True:
            time.sleep(self.poll_seconds)
            try:
                pointer = self._registry.current(self.name)
                if pointer and pointer["version"] != self.current.version:
                    # Load beside the serving model, then swap the reference: requests in
                    # flight finish on the old one, new ones get the new one. A promoted
                    # candidate is served already: its loaded model becomes production.
                    experiment = self.experiment
                    self.current = (experiment[0] if experiment and experiment[0].version == pointer["version"]
                                    else self._load_version(pointer["version"]))
                    print(f"now serving {self.name} {pointer['version']}", flush=True)
                self._follow_experiment()
            except Exception as error:  # noqa: BLE001 - keep serving the loaded version
                print(f"could not switch to the registry's current version: {error}", flush=True)

    def _follow_experiment(self) -> None:
        """Serves the candidate ``canary.json`` names, with its traffic share, or ends the experiment."""
        canary = self._registry.canary(self.name)
        percent = float((canary or {}).get("traffic_percent") or 0)
        if not canary or not 0 < percent < 100 or canary["version"] == self.current.version:
            if self.experiment is not None:
                print(f"experiment ended: {self.name} {self.current.version} takes all traffic", flush=True)
            self.experiment = None
            return
        running = self.experiment
        if running and running[0].version == canary["version"] and running[1] == percent:
            return
        candidate = running[0] if running and running[0].version == canary["version"] else \
            self._load_version(canary["version"])
        self.experiment = (candidate, percent)
        print(f"experiment: {canary['version']} answers {percent:g}% of the requests, "
              f"{self.current.version} the rest", flush=True)

    def choose(self, headers: Optional[dict[str, str]]) -> LoadedModel:
        """The version that answers a request: production, or during an experiment perhaps the candidate.

        With ``x-experiment-key`` the choice is a hash of the key and the candidate's version (the
        same key stays on the same version for the experiment); without it, a random draw. Our
        probes reach production, or the candidate when they ask for it (``x-kfp-ct-probe: candidate``).
        """
        production, experiment = self.current, self.experiment
        if experiment is None:
            return production
        candidate, percent = experiment
        probe = probe_kind(headers)
        if probe is not None:
            return candidate if probe == "candidate" else production
        key = header_value(headers, EXPERIMENT_KEY_HEADER)
        if key:
            digest = hashlib.blake2b(f"{candidate.version}/{key}".encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest, "big") % 10_000
        else:
            bucket = random.randrange(10_000)
        return candidate if bucket < percent * 100 else production

    def get_input_types(self) -> list[dict]:
        """V2 metadata: one input tensor per feature."""
        info = self.current.info
        return [{"name": f, "datatype": "BYTES" if f in info["categorical_features"] else "FP64", "shape": [-1]}
                for f in info["features"]]

    def get_output_types(self) -> list[dict]:
        """V2 metadata: probability and 0/1 prediction per row (a regression: the predicted value)."""
        if self.current.task == "regression":
            return [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
        return [{"name": "probability", "datatype": "FP64", "shape": [-1]},
                {"name": "prediction", "datatype": "INT64", "shape": [-1]}]

    def predict(self, payload: Any, headers: Optional[dict[str, str]] = None) -> Any:
        """V1 (dict) or V2 (InferRequest) prediction; logged to the monitor like KServe's payload logger."""
        model = self.choose(headers)
        if self.payload_logger is None or is_probe(headers):
            return self._predict(payload, model)

        event_id = request_id(headers)
        # Like KServe's logger: the request is logged as received, the response only when it succeeded.
        request_body = _rest_body(payload)
        if request_body is not None:
            self.payload_logger.log(REQUEST_TYPE, event_id, request_body, model.version)
        response = self._predict(payload, model)
        response_body = _rest_body(response)
        if request_body is not None and response_body is not None:
            self.payload_logger.log(RESPONSE_TYPE, event_id, response_body, model.version)
        return response

    def _predict(self, payload: Any, model: Optional[LoadedModel] = None) -> Any:
        """Answers with ``model`` (default: production)."""
        model = model or self.current
        features, categorical = model.info["features"], model.info["categorical_features"]
        if not isinstance(payload, kserve.InferRequest):
            payload = _decoded(payload)
            if not isinstance(payload, dict) or "instances" not in payload:
                raise InvalidInput("request body must be a JSON object with 'instances'")
        sent = sent_features(payload, features, looked_up_features(model.info))
        if isinstance(payload, kserve.InferRequest):
            columns = tensors_to_columns(payload.inputs, sent, categorical)
        else:
            columns = instances_to_columns(payload["instances"], sent, categorical)
        check_domains(columns, self.domains or model.domains)
        if len(sent) < len(features):
            add_looked_up(columns, model.info, self.feature_lookup)
        values = model.predict(columns.values, columns.rows)
        if model.task == "regression":
            if isinstance(payload, kserve.InferRequest):
                outputs = [kserve.InferOutput("prediction", [columns.rows], "FP64", values.tolist())]
                return kserve.InferResponse(response_id=payload.id or "", model_name=self.name,
                                            model_version=model.version, infer_outputs=outputs)
            return {"predictions": values.tolist(), "model_version": model.version}
        as_list, predictions = values.tolist(), (values >= 0.5).astype(int).tolist()
        if isinstance(payload, kserve.InferRequest):
            outputs = [kserve.InferOutput("probability", [columns.rows], "FP64", as_list),
                       kserve.InferOutput("prediction", [columns.rows], "INT64", predictions)]
            return kserve.InferResponse(response_id=payload.id or "", model_name=self.name,
                                        model_version=model.version, infer_outputs=outputs)
        return {"predictions": predictions, "probabilities": as_list, "model_version": model.version}


def folder_version(model_dir: str) -> str:
    """The version a fixed model folder answers as: its registry release record's, else the folder's name.

    A registry version carries ``release.json`` (both stores write it), so a folder KServe's storage
    initializer downloaded to ``/mnt/models`` still answers as ``v0007``, not ``models``: the monitor
    finds the version's training sample and blessed metric by it, and tells an experiment's arms apart.
    """
    try:
        with open(os.path.join(model_dir, registry.RELEASE), encoding="utf-8") as handle:
            version = json.load(handle).get("version")
    except (OSError, ValueError, AttributeError):
        version = None
    return str(version) if version else os.path.basename(os.path.normpath(model_dir))


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


class _BoundModelServer(kserve.ModelServer):
    """kserve's model server on a chosen address, or on a socket bound before the workers were forked.

    kserve 0.21's RESTServer binds 0.0.0.0 (kserve/protocol/rest/server.py); its uvicorn config
    is read only when serving begins, after ``start`` has built it and before the event loop
    runs, which is when this sets the host (or hands uvicorn the inherited socket).
    """

    def __init__(self, host: str, sockets: Optional[list] = None, on_serving: Optional[Callable[[], None]] = None,
                 access_log: bool = False, **kwargs):
        super().__init__(**kwargs)
        self._bind_host = host
        self._access_log = access_log
        self._sockets = sockets
        self._on_serving = on_serving

    def setup_event_loop(self):
        rest = getattr(self, "_rest_server", None)
        if rest is not None:
            rest.config.host = self._bind_host
            if not self._access_log:
                # uvicorn 0.54 logs access when "uvicorn.access" has handlers (protocols/http/httptools_impl.py).
                import logging

                access = logging.getLogger("uvicorn.access")
                access.handlers, access.propagate = [], False
            # The app is built when serving begins (RESTServer.start runs create_application, kserve 0.21.0).
            create_application = rest.create_application

            rest.create_application = lambda: build_lean_app(create_application)
            if self._sockets:
                serve_on = rest._server.serve
                rest._server.serve = lambda sockets=None: serve_on(sockets=self._sockets)
            if self._on_serving is not None:
                # uvicorn's Server.startup (uvicorn 0.54 server.py) returns once the app's lifespan has
                # started and the server accepts on its sockets.
                startup = rest._server.startup

                async def startup_then_report(sockets=None):
                    await startup(sockets=sockets)
                    if rest._server.started:
                        self._on_serving()

                rest._server.startup = startup_then_report
        super().setup_event_loop()

    def register_signal_handler(self):
        """SIGTERM, SIGINT and SIGQUIT stop the REST server, whenever they arrive.

        kserve 0.21's handler (``ModelServer.stop``, kserve/model_server.py) stops its multi-process
        and gRPC servers but not the single-process REST server: a stop arriving after kserve
        installs it and before uvicorn captures signals for serving (``Server.capture_signals``,
        uvicorn 0.54) was lost, and the process served on. Setting uvicorn's ``should_exit`` ends
        it in any phase: uvicorn returns right after startup, or leaves its main loop.
        """
        rest = getattr(self, "_rest_server", None)

        def stop(_signum, _frame):
            if rest is None:
                raise SystemExit(0)
            rest._server.should_exit = True

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(signum, stop)


def serve(model_name: str, port: int, model_dir: Optional[str] = None, registry_uri: Optional[str] = None,
          max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, logger_url: Optional[str] = None,
          host: str = "127.0.0.1", schema_path: Optional[str] = None, threads: int = 1,
          workers: int = 1, compiled: bool = True, feature_server_url: Optional[str] = None,
          access_log: bool = False) -> None:
    """Starts the KServe model server (blocks until stopped).

    Args:
        model_name: The model's name in URLs.
        port: HTTP port.
        model_dir: A fixed model folder (or ``registry_uri``).
        registry_uri: A registry whose current version is followed.
        max_body_bytes: Largest request body accepted (413 beyond).
        logger_url: Where to log payloads (None: nowhere).
        host: Address to listen on: loopback unless all interfaces (0.0.0.0, in the cluster image) are asked for.
        schema_path: A data validation schema whose domains requests must respect (None: the model folder's).
        threads: OpenMP/BLAS threads per prediction. One by default: requests are small, and with
            one per core a busy neighbour stalls the pool (measured on 2 cores with two busy
            processes, single-row predict_proba in process: p99 33 ms with 2 threads, 11 ms with 1).
        workers: Server processes sharing the port (one per core on a multi-core host). Each
            is a whole server (model, registry follower, payload logger) forked after the port
            is bound; kserve's own ``workers`` is not used because its spawned children import
            the app anew, without this server's middlewares (kserve/protocol/rest/multiprocess/server.py).
        compiled: Predict through the compiled path when it is proven equal at load.
        feature_server_url: Feast's feature server, for the features requests leave out (None: none).
        access_log: Log a line per request (uvicorn's access log). Off by default, as for the feature
            server: a 100-row request served 4% fewer rows a second with it (measured here, one worker);
            the payload logger records requests for the monitor, and a cluster's mesh or ingress logs them.
    """
    if workers <= 1:
        _serve_process(model_name, port, model_dir, registry_uri, max_body_bytes, logger_url, host, schema_path,
                       threads, compiled, feature_server_url, sockets=None, access_log=access_log)
        return
    import socket

    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so (else 40 ms delayed ACKs).
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                             socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    board = WorkerBoard(workers)

    def serve_worker(index: int) -> None:
        _serve_process(model_name, port, model_dir, registry_uri, max_body_bytes, logger_url, host, schema_path,
                       threads, compiled, feature_server_url, sockets=[listener], board=board, worker=index,
                       access_log=access_log)

    raise SystemExit(run_workers(workers, serve_worker, f"http://{host}:{port}"))


class WorkerBoard:
    """Which workers of a multi-worker server serve: one byte each, in memory shared across ``fork``.

    A worker's model reports healthy (kserve's readiness, V1 and V2) only when every worker
    serves, so a caller that waits for ready does not race the slowest worker.
    """

    def __init__(self, workers: int):
        """Args: workers: how many workers share the port."""
        self.workers = workers
        self._slots = mmap.mmap(-1, workers)  # anonymous and MAP_SHARED: forked children write the same bytes

    def mark_serving(self, index: int) -> None:
        """Records that worker ``index`` accepts requests."""
        self._slots[index] = 1

    def serving(self) -> int:
        """How many workers accept requests."""
        return self._slots[:].count(1)

    def all_serving(self) -> bool:
        """Tells whether every worker accepts requests."""
        return self.serving() == self.workers


#: How long workers may take to end after a stop before they are killed (kserve's own grace period is 30 s).
STOP_GRACE_SECONDS = 30.0


def run_workers(workers: int, serve_worker: Callable[[int], None], where: str) -> int:
    """Forks ``workers`` processes running ``serve_worker(index)`` and supervises them.

    SIGTERM or SIGINT to the parent is a stop asked for: it is forwarded to every worker and the
    parent returns 0 however far each worker got (one still loading ends at once, with status 0;
    one that has not ended ``STOP_GRACE_SECONDS`` later is killed). A worker that ends on its own
    is a broken server: the others are stopped and the parent returns non-zero (the worker's
    status, 128 + signal when a signal killed it), for the supervisor to restart the whole server.

    Returns:
        The parent's exit status.
    """
    children: list[int] = []
    stop_asked = False

    def forward(signum, _frame):
        nonlocal stop_asked
        stop_asked = True
        _signal_all(children, signum)

    stop_signals = {signal.SIGTERM, signal.SIGINT}
    # Blocked while forking: a stop arriving meanwhile is handled once the handlers and the child list
    # are in place, in the parent and in each worker (no window where the default action kills).
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        for index in range(workers):
            pid = os.fork()
            if pid == 0:
                _worker_main(serve_worker, index, stop_signals)
            children.append(pid)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
    print(f"{workers} workers on {where}: {', '.join(map(str, children))}", flush=True)

    first: Optional[tuple[int, int]] = None  # the first worker to end: (pid, exit code)
    broken, deadline = False, None  # broken: a worker ended on its own, before any stop was asked
    remaining = set(children)
    while remaining:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            if (stop_asked or broken) and deadline is None:
                deadline = time.monotonic() + STOP_GRACE_SECONDS
            if deadline is not None and time.monotonic() > deadline:
                # A worker that does not honour the stop within the grace period is killed: a stop ends.
                print(f"workers {sorted(remaining)} still run {STOP_GRACE_SECONDS:.0f} s after the stop: killed",
                      flush=True)
                _signal_all(remaining, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.05)
            continue
        remaining.discard(pid)
        if first is None:
            first = (pid, os.waitstatus_to_exitcode(status))
            if not stop_asked:
                broken = True
                print(f"worker {pid} ended on its own ({_describe(first[1])}): stopping the others", flush=True)
                _signal_all(remaining, signal.SIGTERM)
    if not broken:
        print(f"stopped as asked: {workers} workers ended", flush=True)
        return 0
    code = first[1]
    return 128 - code if code < 0 else (code or 1)


def _signal_all(pids, signum) -> None:
    for pid in list(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _worker_main(serve_worker: Callable[[int], None], index: int, stop_signals: set) -> None:
    """A forked worker: a stop before kserve installs its own handlers ends it with status 0."""

    def stop_before_serving(_signum, _frame):
        os._exit(0)

    for signum in stop_signals:
        signal.signal(signum, stop_before_serving)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
    code = 0
    try:
        serve_worker(index)
    except BaseException:  # noqa: BLE001 - a worker's failure is its exit status, not a traceback in the parent
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _describe(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


def _serve_process(model_name, port, model_dir, registry_uri, max_body_bytes, logger_url, host, schema_path,
                   threads, compiled, feature_server_url, sockets, board: Optional[WorkerBoard] = None,
                   worker: int = 0, access_log: bool = False) -> None:
    from kserve.model_server import app
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    payload_logger = None
    if logger_url:
        payload_logger = PayloadLogger(logger_url, model_name, source=f"http://localhost:{port}/")
        print(f"logging requests and responses to {logger_url}", flush=True)
    model = TabularModel(model_name, model_dir=model_dir, registry_uri=registry_uri,
                              payload_logger=payload_logger, schema_path=schema_path, threads=threads,
                              compiled=compiled, feature_server_url=feature_server_url,
                              peers_ready=board.all_serving if board else None)
    model.load()
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(V2JsonWithoutContentType)
    source = model_dir or f"registry {registry_uri} ({model.current.version})"
    print(f"serving {model_name} from {source} on http://{host}:{port} ({model.current.path_note})"
          + (f"; looked-up features from the feature server {feature_server_url}" if feature_server_url else ""),
          flush=True)
    # Per-request latency log lines cost more than the prediction of a single row.
    on_serving = None
    if board is not None:
        def on_serving():
            board.mark_serving(worker)
            if board.all_serving():
                print(f"all {board.workers} workers serve", flush=True)

    _BoundModelServer(host, sockets=sockets, on_serving=on_serving, http_port=port, enable_grpc=False, workers=1,
                      enable_latency_logging=False, access_log=access_log).start([model])
