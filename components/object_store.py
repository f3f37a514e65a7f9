"""The model registry on S3 (any S3 endpoint, through the minio SDK), for cluster deployments.

The S3 store of the registry interface (``components/registry.py``, which opens it for
``s3://`` URIs), with the same layout: ``<prefix>/<model>/versions/<vNNNN>/...``,
``<prefix>/<model>/current.json``, written last (one S3 PUT is atomic, so readers see the
old production model or the complete new one) and ``<prefix>/<model>/history.jsonl``
(rewritten whole: S3 has no append; runs that deploy are single-flight).
Endpoint and credentials come from the environment: ``S3_ENDPOINT`` (host:port,
or a URL whose scheme sets TLS), ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``
(on a cluster, from the Secret KServe also reads).
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Optional
from urllib.parse import urlparse

from components import registry_store as registry
from components.s3_settings import client_settings


class S3Registry(registry.RegistryStore):
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

    def _get_bytes(self, key: str) -> Optional[bytes]:
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                return None
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def _get_json(self, key: str) -> Optional[dict[str, Any]]:
        data = self._get_bytes(key)
        return None if data is None else json.loads(data)

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

    def _record(self, model_name: str, event: str, pointer: dict[str, Any]) -> None:
        lines = self.history(model_name) + [{"event": event, **pointer}]
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        self.client.put_object(self.bucket, self._key(model_name, registry.HISTORY), io.BytesIO(data), len(data),
                               content_type="application/x-ndjson")

    def point(self, model_name: str, pointer: dict[str, Any], event: str = "deploy") -> None:
        """Makes a pointer production (``current.json``, one atomic PUT), recording ``event`` in the history."""
        self._put_json(self._key(model_name, registry.CURRENT), pointer)
        self._record(model_name, event, pointer)

    def canary(self, model_name: str) -> Optional[dict[str, Any]]:
        """The version serving a canary share, or None."""
        return self._get_json(self._key(model_name, registry.CANARY))

    def set_canary(self, model_name: str, pointer: Optional[dict[str, Any]], event: str = "canary") -> None:
        """Records (or, with None, clears) the canary version, with ``event`` in the history."""
        previous = self.canary(model_name)
        if pointer is None:
            self.client.remove_object(self.bucket, self._key(model_name, registry.CANARY))
        else:
            self._put_json(self._key(model_name, registry.CANARY), pointer)
        if pointer or previous:
            self._record(model_name, event, pointer or previous)

    def _write_version(self, model_name: str, version: str, model_dir: str, release: dict[str, Any]) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)
        for name in sorted(os.listdir(model_dir)):
            path = os.path.join(model_dir, name)
            if os.path.isfile(path):
                self.client.fput_object(self.bucket, self._key(model_name, "versions", version, name), path)
        self._put_json(self._key(model_name, "versions", version, registry.RELEASE), release)

    def _read_release(self, model_name: str, version: str) -> dict[str, Any]:
        return self._get_json(self._key(model_name, "versions", version, registry.RELEASE)) or {}

    def _location(self, model_name: str, version: str) -> str:
        return self.uri(model_name, "versions", version) if version else self.uri()

    def _digest(self, model_name: str, version: str, release: dict[str, Any]) -> Optional[str]:
        return release.get("model_sha256")

    def history(self, model_name: str) -> list[dict[str, Any]]:
        """Every deployment and rollback, oldest first."""
        data = self._get_bytes(self._key(model_name, registry.HISTORY)) or b""
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]

    def download(self, model_name: str, version: str, destination: str) -> str:
        """Downloads a version's files into a local folder; returns the folder."""
        prefix = self._key(model_name, "versions", version) + "/"
        os.makedirs(destination, exist_ok=True)
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            self.client.fget_object(self.bucket, obj.object_name,
                                    os.path.join(destination, obj.object_name[len(prefix):]))
        return destination
