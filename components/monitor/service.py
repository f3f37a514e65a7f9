"""The monitor service: an HTTP app over a ``Monitor``.

Endpoints:
    ``POST /`` (or ``/v1/events``): a payload-logger CloudEvent (KServe's logger URL points here).
    ``POST /v1/ground-truth``: labels, JSON records or CSV ``request_id,index,label``.
    ``POST /v1/windows/close?label=L``: closes the open window as ``L`` and analyses it.
    ``POST /v1/windows/{label}/evaluate``: analyses a closed window again (late ground truth).
    ``GET /v1/status``: JSON of every analysed window. ``GET /metrics``: Prometheus. ``GET /healthz``.

Bad input gets a 4xx naming the problem; nothing already stored is lost.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import threading
from typing import Any, Optional

from components import dataset, registry
from components.monitor import analysis
from components.monitor.events import EventError, parse_event
from components.monitor.metrics import MonitorMetrics
from components.monitor.store import GroundTruthError, WindowStore, check_label

DEFAULT_MAX_BODY_BYTES = 1 << 20


class Monitor:
    """Receives events and ground truth, analyses windows, keeps the status."""

    def __init__(self, state_dir: str, registry_uri: Optional[str], model_name: str,
                 thresholds: Optional[analysis.Thresholds] = None):
        """Creates a monitor over a state folder.

        Args:
            state_dir: Folder of windows, ground truth and cached statistics.
            registry_uri: The model registry (for a model's training sample and blessed metrics); None: no
                skew or degradation, only drift.
            model_name: The served model's name in the registry.
            thresholds: When to flag drift, skew and degradation.
        """
        self.state_dir = os.path.abspath(state_dir)
        self.registry_uri = registry_uri
        self.model_name = model_name
        self.thresholds = thresholds or analysis.Thresholds()
        self.store = WindowStore(self.state_dir, dataset.FEATURES)
        self.metrics = MonitorMetrics()
        self._analysis_lock = threading.Lock()
        self._schema = None
        self._registry = registry.open_registry(registry_uri) if registry_uri else None

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        """Takes one CloudEvent; returns the prediction rows it completed.

        Raises:
            EventError: The event is malformed (nothing is stored from it).
        """
        try:
            event = parse_event(headers, body)
            rows = self.store.add(event)
        except EventError as error:
            self.metrics.rejected.labels(error.reason).inc()
            raise
        self.metrics.events.labels(event.kind).inc()
        self.metrics.predictions.inc(rows)
        self.metrics.pending.set(self.store.pending()["rows"])
        return rows

    def add_ground_truth(self, records: Any) -> int:
        """Stores ground-truth labels; returns how many.

        Raises:
            GroundTruthError: A record is malformed (nothing of the batch is stored).
        """
        try:
            count = self.store.add_ground_truth(records)
        except GroundTruthError:
            self.metrics.rejected.labels("bad_ground_truth").inc()
            raise
        self.metrics.ground_truth.inc(count)
        return count

    def _comparison_schema(self):
        if self._schema is None:
            self._schema = analysis.comparison_schema()
        return self._schema

    def _version_dir(self, version: str) -> Optional[str]:
        """A local folder with a version's files (a local registry's own, or a download from S3), or None."""
        if self._registry is None or not version or version not in self._registry.versions(self.model_name):
            return None
        return registry.local_copy(self._registry, self.model_name, version,
                                   os.path.join(self.state_dir, "registry-cache"))

    def reference_statistics(self, version: str):
        """TFDV statistics of a model version's training sample (computed once, then cached), or None."""
        from tensorflow_metadata.proto.v0 import statistics_pb2

        from components import model_files

        cache = os.path.join(self.state_dir, "reference", f"{version}.pb")
        if os.path.exists(cache):
            stats = statistics_pb2.DatasetFeatureStatisticsList()
            with open(cache, "rb") as handle:
                stats.ParseFromString(handle.read())
            return stats
        folder = self._version_dir(version)
        if folder is None or not os.path.exists(model_files.reference_path(folder)):
            return None
        import pandas as pd

        stats = analysis.statistics(pd.read_parquet(model_files.reference_path(folder)))
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with open(cache, "wb") as handle:
            handle.write(stats.SerializeToString())
        return stats

    def blessed_auc(self, version: str) -> Optional[float]:
        """The test-span AUC a model version was blessed with (from its release record), or None."""
        folder = self._version_dir(version)
        path = os.path.join(folder, registry.RELEASE) if folder else None
        if not path or not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return (json.load(handle).get("metrics") or {}).get("auc")

    def close_window(self, label: str) -> dict[str, Any]:
        """Closes the open window as ``label`` and analyses it."""
        check_label(label)
        with self._analysis_lock:
            self.store.close(label)
            self.metrics.pending.set(self.store.pending()["rows"])
            return self._analyze(label)

    def evaluate_window(self, label: str) -> dict[str, Any]:
        """Analyses a closed window again (for ground truth that arrived after it closed).

        Raises:
            KeyError: No closed window has that label.
        """
        if check_label(label) not in self.store.closed_windows():
            raise KeyError(label)
        with self._analysis_lock:
            return self._analyze(label)

    def _analyze(self, label: str) -> dict[str, Any]:
        from components.monitor.store import STATISTICS_FILE

        frame = self.store.window_frame(label)
        windows = self.store.closed_windows()
        position = windows.index(label)
        previous = windows[position - 1] if position > 0 else None
        folder = os.path.join(self.state_dir, "windows", label)
        stats = analysis.statistics(frame) if len(frame) else None
        if stats is not None:
            with open(os.path.join(folder, STATISTICS_FILE), "wb") as handle:
                handle.write(stats.SerializeToString())
        previous_file = os.path.join(self.state_dir, "windows", previous or "", STATISTICS_FILE)
        previous_stats = _read_statistics(previous_file) if previous and os.path.exists(previous_file) else None
        versions = frame["model_version"].value_counts()
        version = str(versions.index[0]) if len(versions) else ""
        if stats is None:
            result = {"rows": 0, "labeled_rows": 0, "auc": None, "accuracy": None, "positive_rate": None,
                      "model_version": None, "drift": {}, "skew": {}, "drifted_features": [],
                      "skewed_features": [], "blessed_auc": None, "auc_drop": None, "degraded": False}
        else:
            result = analysis.analyze_window(frame, stats, previous_stats, self.reference_statistics(version),
                                             self._comparison_schema(), self.blessed_auc(version), self.thresholds)
        result.update({"window": label, "previous_window": previous, "window_folder": folder,
                       "analysed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                       "thresholds": vars(self.thresholds)})
        self.store.write_result(label, result)
        self.metrics.show_window(result)
        return result

    def status(self) -> dict[str, Any]:
        """Every analysed window, oldest first, the latest one apart, and what is pending."""
        windows = [r for r in (self.store.read_result(w) for w in self.store.closed_windows()) if r]
        return {"model_name": self.model_name, "windows": windows, "latest": windows[-1] if windows else None,
                "pending": self.store.pending(), "ground_truth_rows": len(self.store.ground_truth),
                "dropped_unanswered_requests": self.store.dropped_unanswered}


def _read_statistics(path: str):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    with open(path, "rb") as handle:
        stats.ParseFromString(handle.read())
    return stats


def parse_ground_truth_body(body: bytes, content_type: str) -> Any:
    """Ground-truth records from a JSON body (list or ``{"records": [...]}``) or a CSV body.

    Raises:
        GroundTruthError: The body is neither.
    """
    text = body.decode("utf-8", errors="replace")
    if "csv" in content_type:
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows or "request_id" not in rows[0] or "label" not in rows[0]:
            raise GroundTruthError("CSV ground truth needs a header with request_id, label (and index)")
        return rows
    try:
        parsed = json.loads(text)
    except ValueError as error:
        raise GroundTruthError(f"ground truth is not valid JSON: {error}") from None
    return parsed.get("records") if isinstance(parsed, dict) and "records" in parsed else parsed


def create_app(monitor: Monitor, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
    """The Starlette app of a monitor."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def read_body(request):
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return None
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return None
        return body

    async def receive_event(request):
        body = await read_body(request)
        if body is None:
            monitor.metrics.rejected.labels("too_large").inc()
            return error(413, f"event body exceeds the limit of {max_body_bytes} bytes")
        try:
            rows = monitor.receive(dict(request.headers), body)
        except EventError as problem:
            return error(400, str(problem))
        return JSONResponse({"accepted": True, "rows": rows}, status_code=202)

    async def ground_truth(request):
        body = await read_body(request)
        if body is None:
            monitor.metrics.rejected.labels("too_large").inc()
            return error(413, f"ground-truth body exceeds the limit of {max_body_bytes} bytes")
        try:
            records = parse_ground_truth_body(body, request.headers.get("content-type", ""))
        except GroundTruthError as problem:
            monitor.metrics.rejected.labels("bad_ground_truth").inc()
            return error(400, str(problem))
        try:
            count = monitor.add_ground_truth(records)  # counts its own refusals
        except GroundTruthError as problem:
            return error(400, str(problem))
        return JSONResponse({"stored": count})

    async def close_window(request):
        label = request.query_params.get("label") or datetime.datetime.now(
            datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        try:
            return JSONResponse(await run_in_threadpool(monitor.close_window, label))
        except ValueError as problem:
            return error(409 if "exists" in str(problem) else 400, str(problem))

    async def evaluate_window(request):
        label = request.path_params["label"]
        try:
            return JSONResponse(await run_in_threadpool(monitor.evaluate_window, label))
        except KeyError:
            return error(404, f"no closed window {label!r}")
        except ValueError as problem:
            return error(400, str(problem))

    async def status(request):
        return JSONResponse(await run_in_threadpool(monitor.status))

    async def metrics(request):
        return Response(monitor.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def healthz(request):
        return JSONResponse({"ok": True})

    return Starlette(routes=[
        Route("/", receive_event, methods=["POST"]),
        Route("/v1/events", receive_event, methods=["POST"]),
        Route("/v1/ground-truth", ground_truth, methods=["POST"]),
        Route("/v1/windows/close", close_window, methods=["POST"]),
        Route("/v1/windows/{label}/evaluate", evaluate_window, methods=["POST"]),
        Route("/v1/status", status, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])


def serve(state_dir: str, registry_uri: Optional[str], model_name: str, host: str, port: int,
          thresholds: Optional[analysis.Thresholds] = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Runs the monitor service (blocks until stopped)."""
    import uvicorn

    monitor = Monitor(state_dir, registry_uri, model_name, thresholds)
    print(f"monitor of {model_name} on http://{host}:{port} (state {monitor.state_dir})", flush=True)
    uvicorn.run(create_app(monitor, max_body_bytes), host=host, port=port, log_level="warning")
