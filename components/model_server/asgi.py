"""ASGI middleware in front of kserve's FastAPI app: V2 JSON without a Content-Type (the body limit is shared)."""

from __future__ import annotations


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


def build_lean_app(create_application) -> None:
    """Builds kserve's REST app (``create_application``) without two costs a request paid beyond its prediction.

    Same answers, byte for byte:

    - kserve 0.21.0 adds ``timing_asgi.TimingMiddleware`` to every app (kserve/protocol/rest/server.py
      ``_add_middlewares``): two ``getrusage`` calls and a route lookup per request, for a trace log
      line its ``PrintTimings`` writes at INFO. Dropped; kserve's Prometheus histograms stay (they
      are taken in ``Model.__call__``).
    - Its V2 infer endpoint (kserve/protocol/rest/v2_endpoints.py ``V2Endpoints.infer``) returns a
      pydantic ``InferenceResponse`` on a route with ``response_model=None``, so FastAPI walks every
      value with ``jsonable_encoder`` before the app's ``ORJSONResponse`` renders it. Here the
      endpoint's result is dumped by pydantic and rendered by orjson as that path does, without the
      walk (a test compares the bytes). The endpoint is wrapped on its class before the routes are
      registered: FastAPI reads its parameters through ``__wrapped__``, so requests are parsed as before.
    """
    from kserve.model_server import app
    from kserve.protocol.rest.v2_endpoints import V2Endpoints
    from timing_asgi import TimingMiddleware

    if not getattr(V2Endpoints.infer, "_rendered_by_orjson", False):
        V2Endpoints.infer = _rendered_by_orjson(V2Endpoints.infer)
    create_application()
    app.user_middleware = [m for m in app.user_middleware if m.cls is not TimingMiddleware]


def _rendered_by_orjson(endpoint):
    import functools

    import orjson
    from kserve.protocol.rest.v2_datamodels import InferenceResponse
    from starlette.responses import Response

    @functools.wraps(endpoint)
    async def infer(self, **kwargs):
        result = await endpoint(self, **kwargs)
        if not isinstance(result, InferenceResponse):
            return result  # kserve's binary answer, a Response already
        raw = kwargs.get("raw_response")
        headers = {k: v for k, v in raw.headers.items() if k.lower() != "content-length"} if raw is not None else {}
        # As FastAPI's jsonable_encoder dumps a model (mode json, by alias) and ORJSONResponse renders it.
        body = orjson.dumps(result.model_dump(mode="json", by_alias=True),
                            option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        return Response(content=body, media_type="application/json", headers=headers)

    infer._rendered_by_orjson = True
    return infer
