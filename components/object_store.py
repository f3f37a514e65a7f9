"""The model registry on S3 (any S3 endpoint, through the minio SDK), for cluster deployments.

Same layout as the local registry (``components/registry.py``):
``<prefix>/<model>/versions/<vNNNN>/{model.joblib, model.json, release.json}``
and ``<prefix>/<model>/current.json``, which is written last: one S3 PUT is
atomic, so readers see the old production model or the complete new one.
Endpoint and credentials come from the environment: ``S3_ENDPOINT`` (host:port,
or a URL whose scheme sets TLS), ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``
(on a cluster, from the Secret KServe also reads).
"""

from __future__ import annotations

import io
import json
import os
import time
from typing import Any, Optional
from urllib.parse import urlparse

from components import registry
from components.s3_settings import client_settings


class S3Registry:
    """Versioned model folders and a ``current.json`` pointer under ``s3://bucket/prefix``."""

    def __init__(self, uri: str, client=None):
        """Args: uri: ``s3://bucket/prefix``; client: a ``minio.Minio`` (default: from the environment)."""
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI")
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        self.client = client or self._client_from_environment()

    @staticmethod
    def _client_from_environment():
        from minio import Minio

        return Minio(**client_settings("the model registry"))

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def uri(self, *parts: str) -> str:
        """``s3://bucket/prefix/<parts>``."""
        return f"s3://{self.bucket}/{self._key(*parts)}"

    def _put_json(self, key: str, content: dict[str, Any]) -> None:
        data = json.dumps(content, indent=2, sort_keys=True).encode()
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type="application/json")

    def _get_json(self, key: str) -> Optional[dict[str, Any]]:
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                return None
            raise
        try:
            return json.loads(response.read())
        finally:
            response.close()
            response.release_conn()

    def versions(self, model_name: str) -> list[str]:
        """Versions stored for a model, oldest first."""
        prefix = self._key(model_name, "versions") + "/"
        if not self.client.bucket_exists(self.bucket):
            return []
        names = {obj.object_name[len(prefix):].split("/")[0]
                 for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)}
        return sorted(n for n in names if n)

    def current(self, model_name: str) -> Optional[dict[str, Any]]:
        """The production pointer, or None before the first deployment."""
        return self._get_json(self._key(model_name, registry.CURRENT))

    def publish(self, model_name: str, model_dir: str, release: dict[str, Any]) -> dict[str, Any]:
        """Uploads a model folder as a new version, then points ``current.json`` at it (last).

        Returns:
            The new pointer; the current one with ``unchanged: True`` when the model
            is byte for byte the one in production.
        """
        digest = registry.model_digest(model_dir)
        previous = self.current(model_name)
        if previous and previous.get("model_sha256") == digest:
            return {**previous, "unchanged": True}
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)
        version = f"v{len(self.versions(model_name)) + 1:04d}"
        for name in sorted(os.listdir(model_dir)):
            path = os.path.join(model_dir, name)
            if os.path.isfile(path):
                self.client.fput_object(self.bucket, self._key(model_name, "versions", version, name), path)
        self._put_json(self._key(model_name, "versions", version, registry.RELEASE), {**release, "version": version})
        pointer = {"model_name": model_name, "version": version,
                   "model_dir": self.uri(model_name, "versions", version),
                   "previous_version": previous["version"] if previous else None,
                   "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "metrics": release.get("metrics", {}), "run_id": release.get("run_id"), "model_sha256": digest}
        self._put_json(self._key(model_name, registry.CURRENT), pointer)
        return pointer

    def download(self, model_name: str, version: str, destination: str) -> str:
        """Downloads a version's files into a local folder; returns the folder."""
        prefix = self._key(model_name, "versions", version) + "/"
        os.makedirs(destination, exist_ok=True)
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            self.client.fget_object(self.bucket, obj.object_name,
                                    os.path.join(destination, obj.object_name[len(prefix):]))
        return destination
