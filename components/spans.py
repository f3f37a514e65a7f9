"""Spans and windows: span arithmetic shared by the steps, the local runner, the loop and the demo.

A span is one folder of a source, named by its period at the dataset's granularity (the spec's
``source.granularity``): ``2013-01-05`` (day), ``2013-01`` (month), ``2013-Q1`` (quarter),
``2013`` (year). Span ids of one granularity sort as their periods do. A window ``FIRST:LAST``
names training spans then one test span (its last). Standard library only.
"""

from __future__ import annotations

import datetime
import re
from typing import Optional

from components.errors import ComponentError

#: Granularity -> (an example span id, the regular expression of a span id).
GRANULARITIES = {
    "day": ("2013-01-05", re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")),
    "month": ("2013-01", re.compile(r"^(\d{4})-(\d{2})$")),
    "quarter": ("2013-Q1", re.compile(r"^(\d{4})-Q([1-4])$")),
    "year": ("2013", re.compile(r"^(\d{4})$")),
}
DEFAULT_GRANULARITY = "month"
#: Column added by extraction: the span a row came from.
SPAN_COLUMN = "span"


def span_file(span: str) -> str:
    """File name of one span inside an extracted dataset folder.

    Spans are kept apart so that a span whose column types changed reaches validation as it is.
    """
    return f"{span}.parquet"


#: Folder of an extracted dataset holding the other feeds' spans: ``feeds/<feed>/<span>.parquet``.
FEEDS_FOLDER = "feeds"


def feed_span_file(feed: str, span: str) -> str:
    """Path, inside an extracted dataset folder, of one span of a feed other than the main one.

    Validation checks their rows (event time, primary key); the feature store reads them from the source.
    """
    return f"{FEEDS_FOLDER}/{feed}/{span}.parquet"


class SpanError(ComponentError, ValueError):
    """A span list or window that cannot be read; a step reports it as its one error line."""


def _granularity(granularity: str):
    try:
        return GRANULARITIES[granularity]
    except KeyError:
        raise SpanError(f"granularity {granularity!r} is not one of {', '.join(GRANULARITIES)}") from None


def span_start(span: str, granularity: str = DEFAULT_GRANULARITY) -> Optional[datetime.date]:
    """The first day of a span's period, or None when ``span`` is not a span id of the granularity."""
    match = _granularity(granularity)[1].match(span)
    if not match:
        return None
    parts = [int(p) for p in match.groups()]
    try:
        if granularity == "day":
            return datetime.date(*parts)
        if granularity == "month":
            return datetime.date(parts[0], parts[1], 1)
        if granularity == "quarter":
            return datetime.date(parts[0], 3 * parts[1] - 2, 1)
        return datetime.date(parts[0], 1, 1)
    except ValueError:  # 2013-13, 2013-02-30
        return None


def is_span_id(name: str, granularity: str = DEFAULT_GRANULARITY) -> bool:
    """Tells whether ``name`` is a span id of the granularity (``YYYY-MM`` for months)."""
    return span_start(name, granularity) is not None


def add_spans(span: str, count: int, granularity: str = DEFAULT_GRANULARITY) -> str:
    """The span ``count`` periods after (or, negative, before) ``span``."""
    start = span_start(span, granularity)
    if start is None:
        raise SpanError(f"span {span!r} is not of the form {_granularity(granularity)[0]} ({granularity})")
    if granularity == "day":
        return (start + datetime.timedelta(days=count)).isoformat()
    if granularity == "year":
        return f"{start.year + count:04d}"
    months = 3 if granularity == "quarter" else 1
    index = start.year * 12 + start.month - 1 + count * months
    year, month = divmod(index, 12)
    return f"{year:04d}-Q{month // 3 + 1}" if granularity == "quarter" else f"{year:04d}-{month + 1:02d}"


def add_months(span: str, months: int) -> str:
    """The month ``months`` after (or, negative, before) a month span."""
    return add_spans(span, months, "month")


def span_bounds(span: str, granularity: str = DEFAULT_GRANULARITY) -> tuple[datetime.datetime, datetime.datetime]:
    """``[start, end)`` of a span's period (naive datetimes, in the data's own clock)."""
    start = span_start(span, granularity)
    if start is None:
        raise SpanError(f"span {span!r} is not of the form {_granularity(granularity)[0]} ({granularity})")
    end = span_start(add_spans(span, 1, granularity), granularity)
    return (datetime.datetime.combine(start, datetime.time()), datetime.datetime.combine(end, datetime.time()))


def parse_spans(text: str, granularity: str = DEFAULT_GRANULARITY) -> list[str]:
    """Parses a span list: ``2013-01,2013-02`` or a range ``2013-01:2013-03``; sorted and unique.

    Raises:
        SpanError: A span id is not of the granularity's form, a range runs backwards, or nothing is given.
    """
    form = _granularity(granularity)[0]
    spans: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if ":" in part:
            first, last = (s.strip() for s in part.split(":", 1))
            for span in (first, last):
                if not is_span_id(span, granularity):
                    raise SpanError(f"span {span!r} is not of the form {form} ({granularity})")
            if first > last:
                raise SpanError(f"span range {part!r} runs backwards")
            span = first
            while span <= last:
                spans.append(span)
                span = add_spans(span, 1, granularity)
        else:
            if not is_span_id(part, granularity):
                raise SpanError(f"span {part!r} is not of the form {form} ({granularity})")
            spans.append(part)
    if not spans:
        raise SpanError("no span given")
    return sorted(set(spans))


def window_spans(train_spans: str, test_span: str, granularity: str = DEFAULT_GRANULARITY) -> list[str]:
    """All span ids of a window (training spans and the test span), sorted and unique."""
    return sorted(set(parse_spans(train_spans, granularity) + parse_spans(test_span, granularity)))


def split_window(window: str, granularity: str = DEFAULT_GRANULARITY) -> tuple[str, str]:
    """``2013-01:2013-04`` -> (train spans ``2013-01:2013-03``, test span ``2013-04``).

    Raises:
        SpanError: The window is not ``FIRST:LAST`` with at least two spans.
    """
    first, _, last = window.partition(":")
    if not (is_span_id(first, granularity) and is_span_id(last, granularity)):
        example = _granularity(granularity)[0]
        raise SpanError(f"window {window!r} must look like {example}:{add_spans(example, 3, granularity)} "
                        "(training spans, then the test span)")
    if last <= first:
        raise SpanError(f"window {window!r} needs at least two spans: training spans and a test span")
    return f"{first}:{add_spans(last, -1, granularity)}", last


def window_for(spans: list[str], train_spans: int) -> Optional[str]:
    """The run window over the newest spans: ``train_spans`` training spans, then the newest as test span."""
    spans = sorted(spans)
    if len(spans) < 2:
        return None
    chosen = spans[-(train_spans + 1):]
    return f"{chosen[0]}:{chosen[-1]}"
