"""Fingerprint logic: the version of a window's data, from span ids and file contents."""

from __future__ import annotations

from components.sources import check_spans_present, data_version, feed_files, open_source
from components.spans import window_spans


def window_data_version(source_uri: str, train_spans: str, test_span: str, spec) -> str:
    """``<span ids>@sha256:<content hash>``: changes when a span is added, removed or rewritten, or the spec changes.

    Args:
        source_uri: Local folder or ``s3://bucket/prefix`` with one folder per span.
        train_spans: Training spans.
        test_span: The test span.
        spec: The dataset spec (``DatasetSpec``): granularity, feed files, digest.

    Raises:
        ComponentError: A span of the window is missing from the source.
    """
    spans = window_spans(train_spans, test_span, spec.granularity)
    source = open_source(source_uri)
    files = feed_files(spec)
    check_spans_present(source, source_uri, spans, files[0], spec.granularity)
    return f"{','.join(spans)}@sha256:{data_version(source, spans, files, spec.digest())}"
