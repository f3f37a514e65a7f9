"""Fingerprint logic: the version of a window's data, from span ids and file contents."""

from __future__ import annotations

from components.sources import check_spans_present, data_version, open_source
from components.spans import window_spans


def window_data_version(source_uri: str, train_spans: str, test_span: str) -> str:
    """``<span ids>@sha256:<content hash>``: changes when a span is added, removed or rewritten.

    Raises:
        ComponentError: A span of the window is missing from the source.
    """
    spans = window_spans(train_spans, test_span)
    source = open_source(source_uri)
    check_spans_present(source, source_uri, spans)
    return f"{','.join(spans)}@sha256:{data_version(source, spans)}"
