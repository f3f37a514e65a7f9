"""ASGI middlewares in front of kserve's FastAPI app: the body-size limit and V2 JSON without a Content-Type."""

from __future__ import annotations

import json


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
