"""Where the S3 endpoint and credentials come from, for every runtime that talks to S3.

``S3_ENDPOINT`` (``host:port``, or a URL whose scheme sets TLS), ``AWS_ACCESS_KEY_ID``
and ``AWS_SECRET_ACCESS_KEY``; on a cluster they come from the S3 Secret, as environment
variables or, better, as files: ``S3_CREDENTIALS_DIR`` names the folder where the Secret is
mounted (one file per key). Standard library only: callers build
``minio.Minio(**client_settings())``.
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
    return {"endpoint": endpoint.split("://", 1)[-1], "access_key": _credential("AWS_ACCESS_KEY_ID"),
            "secret_key": _credential("AWS_SECRET_ACCESS_KEY"), "secure": endpoint.startswith("https://")}


def endpoint_url(endpoint: str) -> str:
    """``S3_ENDPOINT`` as a URL: ``host:port`` means plain HTTP (as ``client_settings`` reads it)."""
    return endpoint if "://" in endpoint else f"http://{endpoint}"


def _credential(name: str) -> Any:
    """A credential from the mounted Secret (``S3_CREDENTIALS_DIR/<name>``), else from the environment."""
    folder = os.environ.get("S3_CREDENTIALS_DIR")
    if folder and os.path.exists(os.path.join(folder, name)):
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            return handle.read().strip()
    return os.environ.get(name)
