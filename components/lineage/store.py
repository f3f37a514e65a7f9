"""Connections to an ML Metadata store: SQLite file, MySQL/MariaDB database, or MLMD gRPC service."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse


def connection_config(metadata_uri: str):
    """Builds the MLMD connection for a URI.

    Args:
        metadata_uri: ``path/to/file.sqlite`` or ``sqlite:///abs/path``;
            ``mysql://user@host:port/database`` (password from ``$MLMD_MYSQL_PASSWORD``
            or in the URI); ``grpc://host:port`` for an MLMD service (a Kubeflow
            cluster's ``metadata-grpc-service``).

    Returns:
        A ``ConnectionConfig`` or, for gRPC, a ``MetadataStoreClientConfig``.
    """
    from ml_metadata.proto import metadata_store_pb2

    parsed = urlparse(metadata_uri)
    if parsed.scheme in ("", "sqlite", "file"):
        path = metadata_uri if not parsed.scheme else parsed.path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = os.path.abspath(path)
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        return config
    if parsed.scheme == "mysql":
        config = metadata_store_pb2.ConnectionConfig()
        config.mysql.host = parsed.hostname or "127.0.0.1"
        config.mysql.port = parsed.port or 3306
        config.mysql.database = parsed.path.lstrip("/") or "mlmd"
        config.mysql.user = unquote(parsed.username or "root")
        config.mysql.password = unquote(parsed.password or os.environ.get("MLMD_MYSQL_PASSWORD", ""))
        return config
    if parsed.scheme == "grpc":
        config = metadata_store_pb2.MetadataStoreClientConfig()
        config.host = parsed.hostname or "localhost"
        config.port = parsed.port or 8080
        return config
    raise ValueError(f"metadata store {metadata_uri!r}: expected a SQLite path, mysql://... or grpc://host:port")


def connect(metadata_uri: str):
    """Opens the MLMD store named by a URI (created on first use for SQLite and MySQL)."""
    from ml_metadata.metadata_store import metadata_store

    return metadata_store.MetadataStore(connection_config(metadata_uri))
