"""Span sources: a local folder or an S3 bucket/prefix, one sub-folder per span.

A span folder is named by its period (``components.spans``: ``2013-01``, ``2013-Q1``, ...) and
holds one file per feed of the dataset spec (``<source>/<span>/<feed file>``), Parquet or CSV.
"""

from __future__ import annotations

import io
import os
from urllib.parse import urlparse

from components.frames import UnreadableTypeError, logical_types  # noqa: F401 - part of this module's API
from components.kfp_io import ComponentError, error_line
from components.s3_settings import client_settings
from components.spans import DEFAULT_GRANULARITY, is_span_id


class LocalSource:
    """Spans in a local folder."""

    def __init__(self, root: str):
        """Args: root: the folder holding one sub-folder per span."""
        self.root = root

    def spans(self, name: str, granularity: str = DEFAULT_GRANULARITY) -> list[str]:
        """Lists the span ids (of the granularity) whose folder holds the file ``name``, sorted."""
        if not os.path.isdir(self.root):
            return []
        return sorted(
            span for span in os.listdir(self.root)
            if is_span_id(span, granularity) and os.path.isfile(os.path.join(self.root, span, name))
        )

    def location(self, span: str, name: str) -> str:
        """Where a span's file is (named in errors)."""
        return os.path.join(self.root, span, name)

    def has(self, span: str, name: str) -> bool:
        """Tells whether a span folder holds a file."""
        return os.path.isfile(self.location(span, name))

    def read_bytes(self, span: str, name: str) -> bytes:
        """Returns the raw bytes of a span's file (``name``: a feed's file)."""
        with open(self.location(span, name), "rb") as handle:
            return handle.read()


class S3Source:
    """Spans under an S3 prefix, read with the minio SDK from any S3 endpoint.

    The endpoint and credentials come from the environment: ``S3_ENDPOINT``
    (``host:port``, or a URL whose scheme sets TLS), ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` (on a cluster, from a Secret).
    """

    def __init__(self, uri: str):
        """Args: uri: ``s3://bucket/prefix``."""
        from minio import Minio

        parsed = urlparse(uri)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = Minio(**client_settings(f"source {uri}"))

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def spans(self, name: str, granularity: str = DEFAULT_GRANULARITY) -> list[str]:
        """Lists the span ids (of the granularity) whose folder holds the file ``name``, sorted."""
        found = set()
        prefix = self._key() + "/" if self.prefix else ""
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            relative = obj.object_name[len(prefix):].split("/")
            if len(relative) == 2 and relative[1] == name and is_span_id(relative[0], granularity):
                found.add(relative[0])
        return sorted(found)

    def location(self, span: str, name: str) -> str:
        """Where a span's file is (named in errors)."""
        return f"s3://{self.bucket}/{self._key(span, name)}"

    def has(self, span: str, name: str) -> bool:
        """Tells whether a span folder holds a file."""
        from minio.error import S3Error

        try:
            self.client.stat_object(self.bucket, self._key(span, name))
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject"):
                return False
            raise
        return True

    def read_bytes(self, span: str, name: str) -> bytes:
        """Returns the raw bytes of a span's file (``name``: a feed's file)."""
        response = self.client.get_object(self.bucket, self._key(span, name))
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()


def open_source(uri: str):
    """Returns the span source for a URI: ``s3://bucket/prefix`` or a local folder."""
    if uri.startswith("s3://"):
        return S3Source(uri)
    return LocalSource(uri[len("file://"):] if uri.startswith("file://") else uri)


def read_span_frame(data: bytes):
    """Parses a Parquet span file's bytes into a DataFrame, each column by its logical type (``logical_types``)."""
    import pandas as pd

    return logical_types(pd.read_parquet(io.BytesIO(data)))


def read_feed(data: bytes, feed):
    """Parses a span's file of a feed (``components.dataset_spec.Feed``): Parquet, or CSV with its options.

    CSV columns the spec declares as strings are read as strings (a code such as ``007`` keeps its
    zeros); numbers are inferred as pandas does, and validation judges them.
    """
    import pandas as pd

    if feed.format == "parquet":
        return read_span_frame(data)
    strings = {name: "string" for name, kind in feed.columns.items() if kind == "string"}
    frame = pd.read_csv(io.BytesIO(data), sep=feed.csv.get("delimiter", ","), dtype=strings,
                        header=0 if feed.csv.get("header", True) else None,
                        names=None if feed.csv.get("header", True) else list(feed.columns))
    # Strings as object columns, as the Parquet feeds arrive (missing values as None).
    for name in strings:
        if name in frame:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def read_joined_spans(source_uri: str, spec) -> dict[str, object]:
    """Span id -> the main feed's rows with each feature view's features (the plain join), for every span.

    A span without a view's feed file keeps its rows without that view's features.

    Raises:
        ValueError: The source holds no span of the spec.
    """
    from components.feature_views import plain_join

    source = open_source(source_uri)
    feed = spec.feeds[spec.main_feed]
    spans = source.spans(feed.file, spec.granularity)
    if not spans:
        raise ValueError(f"{source_uri} holds no span of {spec.name} (folders like "
                         f"{spec.span_pattern().pattern} with {feed.file})")
    frames = {}
    for span in spans:
        frame = read_feed(source.read_bytes(span, feed.file), feed)
        for view in spec.feature_views:
            view_feed = spec.feeds[view.feed]
            if source.has(span, view_feed.file):
                frame = plain_join(frame, read_feed(source.read_bytes(span, view_feed.file), view_feed), view)
        frames[span] = frame
    return frames


def data_version(source, spans: list[str], files: tuple[str, ...], spec_digest: str = "") -> str:
    """Content hash of the given spans: changes when any of their feed files, or the dataset spec, changes.

    Args:
        source: A source from ``open_source``.
        spans: Span ids, all present in the source.
        files: The feed files of a span (the main feed's first; the others are hashed when present:
            a corrected reading of a looked-up feed is new data too).
        spec_digest: The dataset spec's digest (a changed label rule or split is a new dataset).
    """
    import hashlib

    digest = hashlib.sha256(spec_digest.encode())
    for span in sorted(spans):
        digest.update(span.encode() + b"\0" + hashlib.sha256(source.read_bytes(span, files[0])).digest())
        for name in files[1:]:
            if source.has(span, name):
                digest.update(name.encode() + b"\0" + hashlib.sha256(source.read_bytes(span, name)).digest())
    return digest.hexdigest()


def feed_files(spec) -> tuple[str, ...]:
    """The file of each feed of a span in a dataset spec, the main feed's first."""
    main = spec.feeds[spec.main_feed].file
    return (main, *sorted(feed.file for feed in spec.feeds.values() if feed.file != main))


def check_spans_present(source, source_uri: str, spans: list[str], name: str,
                        granularity: str = DEFAULT_GRANULARITY) -> None:
    """Raises ComponentError naming the spans missing from the source, and those available."""
    try:
        available = source.spans(name, granularity)
    except Exception as error:  # noqa: BLE001 - OSError locally, S3Error or urllib3 errors from S3
        raise ComponentError(f"source {source_uri}: its spans cannot be listed: {error_line(error)}") from None
    missing = [s for s in spans if s not in available]
    if missing:
        shown = ", ".join(available[-24:]) or "none"
        raise ComponentError(
            f"span(s) {', '.join(missing)} not found in source {source_uri}; spans available: {shown}"
        )
