"""Extraction logic: read the spans of a window and write them as one dataset."""

from __future__ import annotations

from components.kfp_io import ComponentError, error_line
from components.sources import check_spans_present, data_version, feed_files, open_source, read_feed
from components.spans import SPAN_COLUMN, feed_span_file, span_file


def _read_span(source, span: str, feed):
    """A span's rows of a feed; a file that cannot be read or parsed is one clear error naming it."""
    try:
        data = source.read_bytes(span, feed.file)
    except Exception as error:  # noqa: BLE001 - OSError locally, S3Error or urllib3 errors from S3
        raise ComponentError(f"span {span}: {source.location(span, feed.file)}: cannot be read: "
                             f"{error_line(error)}") from None
    try:
        return read_feed(data, feed)
    except Exception as error:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError; pandas ParserError ...
        kind = {"parquet": "Parquet", "csv": "CSV"}[feed.format]
        raise ComponentError(f"span {span}: {source.location(span, feed.file)}: not a readable {kind} file "
                             f"({len(data):,} bytes): {error_line(error)}") from None


def extract_spans(source_uri: str, spans: list[str], output_path: str, spec) -> dict:
    """Reads the given spans from the source and writes them into one dataset folder.

    Each span becomes ``<output_path>/<span>.parquet`` with a ``span`` column; each other feed's
    file of the span, where the span has one, ``<output_path>/feeds/<feed>/<span>.parquet`` (for
    validation's row checks). An empty span or one with changed columns is passed through as it
    is (the data validation step rejects it, with the reason); a missing one is an error.

    Args:
        source_uri: A local folder or ``s3://bucket/prefix`` holding one folder per span.
        spans: Span ids to read.
        output_path: The dataset folder to write.
        spec: The dataset spec (``DatasetSpec``): its main feed is read.

    Returns:
        Artifact metadata: spans, rows per span, total rows and a content hash of
        the span files (the data version).

    Raises:
        ComponentError: A span is missing from the source, or its file cannot be read as Parquet.
    """
    import os

    source = open_source(source_uri)
    feed = spec.feeds[spec.main_feed]
    check_spans_present(source, source_uri, spans, feed.file, spec.granularity)
    os.makedirs(output_path, exist_ok=True)
    rows = {}
    for span in spans:
        frame = _read_span(source, span, feed)
        frame[SPAN_COLUMN] = span
        frame.to_parquet(os.path.join(output_path, span_file(span)), index=False)
        rows[span] = int(len(frame))
        others = []
        for other in spec.feeds.values():
            if other.name == spec.main_feed or not source.has(span, other.file):
                continue
            other_frame = _read_span(source, span, other)
            path = os.path.join(output_path, feed_span_file(other.name, span))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            other_frame.to_parquet(path, index=False)
            others.append(f"{len(other_frame):,} {other.name} rows")
        print(f"[extract] span {span}: {len(frame):,} rows{''.join(f', {o}' for o in others)}", flush=True)
    return {
        "spans": spans,
        "rows_per_span": rows,
        "rows": sum(rows.values()),
        "data_hash": data_version(source, spans, feed_files(spec), spec.digest()),
        "source_uri": source_uri,
    }
