"""The monitor service: an HTTP app over a ``Monitor``.

Endpoints:
    ``POST /`` (or ``/v1/events``): a payload-logger CloudEvent (KServe's logger URL points here).
    ``POST /v1/ground-truth``: labels, JSON records or CSV ``request_id,index,label``.
    ``POST /v1/windows/close?label=L``: closes the open window as ``L`` and analyses it.
    ``POST /v1/windows/{label}/evaluate``: analyses a closed window again (late ground truth).
    ``GET /v1/status``: JSON of every analysed window. ``GET /metrics``: Prometheus. ``GET /healthz``.
    ``GET /v1/experiment``: the online experiment's last look and every decision; ``POST`` looks now.

Bad input gets a 4xx naming the problem; nothing already stored is lost.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from typing import Any, Optional

from components.body_limit import DEFAULT_MAX_BODY_BYTES, BodySizeLimit
from components.monitor import analysis
from components.monitor.events import EventError
from components.monitor.monitor import Monitor
from components.monitor.store import GroundTruthError


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

    async def receive_event(request):
        body = await request.body()
        try:
            rows = monitor.receive(dict(request.headers), body)
        except EventError as problem:
            return error(400, str(problem))
        return JSONResponse({"accepted": True, "rows": rows}, status_code=202)

    async def ground_truth(request):
        body = await request.body()
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

    async def experiment(request):
        if request.method == "POST":
            look = await run_in_threadpool(monitor.look_at_experiment)
            return JSONResponse(look, status_code=500 if look.get("error") else 200)
        last = monitor.experiments.last_look() if monitor.experiments else None
        decisions = monitor.experiments.decisions() if monitor.experiments else []
        looks = monitor.experiments.looks() if monitor.experiments else []
        return JSONResponse({"last_look": last, "decisions": decisions, "looks": looks})

    async def metrics(request):
        return Response(monitor.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def healthz(request):
        return JSONResponse({"ok": True})

    app = Starlette(routes=[
        Route("/", receive_event, methods=["POST"]),
        Route("/v1/events", receive_event, methods=["POST"]),
        Route("/v1/ground-truth", ground_truth, methods=["POST"]),
        Route("/v1/windows/close", close_window, methods=["POST"]),
        Route("/v1/windows/{label}/evaluate", evaluate_window, methods=["POST"]),
        Route("/v1/status", status, methods=["GET"]),
        Route("/v1/experiment", experiment, methods=["GET", "POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes,
                       on_refused=lambda scope: monitor.metrics.rejected.labels("too_large").inc())
    return app


def serve(state_dir: str, registry_uri: Optional[str], spec, host: str, port: int,
          thresholds: Optional[analysis.Thresholds] = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
          beam_args: Optional[list[str]] = None, feature_server_url: Optional[str] = None,
          experiment_rules=None) -> None:
    """Runs the monitor service (blocks until stopped)."""
    import uvicorn

    monitor = Monitor(state_dir, registry_uri, spec, thresholds, beam_args, feature_server_url, experiment_rules)
    print(f"monitor of {monitor.model_name} ({spec.name}, {spec.metric['primary']}) on http://{host}:{port} "
          f"(state {monitor.state_dir})", flush=True)
    uvicorn.run(create_app(monitor, max_body_bytes), host=host, port=port, log_level="warning")
