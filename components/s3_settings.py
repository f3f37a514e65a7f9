"""Where the S3 endpoint and credentials come from, for every runtime that talks to S3.

``S3_ENDPOINT`` (``host:port``, or a URL whose scheme sets TLS), ``AWS_ACCESS_KEY_ID``
and ``AWS_SECRET_ACCESS_KEY``; on a cluster they come from the S3 Secret. Standard
library only: callers build ``minio.Minio(**client_settings())``.
"""

from __future__ import annotations

import os
from typing import Any


def client_settings(purpose: str = "S3") -> dict[str, Any]:
    """Keyword arguments for ``minio.Minio`` from the environment.

    Args:
        purpose: What needs S3, named in the error.

    Raises:
        ValueError: ``S3_ENDPOINT`` is not set.
    """
    endpoint = os.environ.get("S3_ENDPOINT")
    if not endpoint:
        raise ValueError(f"{purpose} is on S3 but S3_ENDPOINT is not set (host:port of the S3 service)")
    return {"endpoint": endpoint.split("://", 1)[-1], "access_key": os.environ.get("AWS_ACCESS_KEY_ID"),
            "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY"), "secure": endpoint.startswith("https://")}
