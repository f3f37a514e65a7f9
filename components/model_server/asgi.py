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
