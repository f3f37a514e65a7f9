"""The request body limit of this project's HTTP services (model server, monitor): one ASGI middleware.

Standard library only: it wraps kserve's FastAPI app and the monitor's Starlette app alike.
A body over the limit (declared by Content-Length, or counted while it streams) is answered
413 with a JSON error naming the size and the limit, and never reaches the app.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Optional

#: Largest request body accepted by default (1 MiB: thousands of rows per request).
DEFAULT_MAX_BODY_BYTES = 1 << 20


class BodySizeLimit:
    """ASGI middleware answering 413 to request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 on_refused: Optional[Callable[[dict], None]] = None):
        """Wraps an app.

        Args:
            app: The ASGI app.
            max_bytes: The largest body accepted.
            on_refused: Called with the request's scope on each refusal (to count it).
        """
        self.app = app
        self.max_bytes = max_bytes
        self.on_refused = on_refused

    async def __call__(self, scope, receive, send):
        """Checks Content-Length, then counts the streamed body."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, send, int(declared))
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
            await self._refuse(scope, send, error.size)

    async def _refuse(self, scope, send, size: int) -> None:
        if self.on_refused is not None:
            self.on_refused(scope)
        body = json.dumps({"error": f"request body of {size} bytes exceeds the limit of {self.max_bytes} bytes"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body.encode()})


class _BodyTooLargeError(Exception):
    def __init__(self, size: int):
        super().__init__(size)
        self.size = size
