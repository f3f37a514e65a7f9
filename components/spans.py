"""Spans and windows: month arithmetic shared by the steps, the local runner, the loop and the demo.

A span is a month, ``YYYY-MM``. A window ``FIRST:LAST`` names training months then one test
month (its last). Standard library only.
"""

from __future__ import annotations

import re
from typing import Optional

from components.kfp_io import ComponentError

_SPAN_RE = re.compile(r"^\d{4}-\d{2}$")


class SpanError(ComponentError, ValueError):
    """A span list or window that cannot be read; a step reports it as its one error line."""


def is_span_id(name: str) -> bool:
    """Tells whether ``name`` is a span id (``YYYY-MM``)."""
    return bool(_SPAN_RE.match(name)) and 1 <= int(name[5:7]) <= 12


def add_months(span: str, months: int) -> str:
    """The span ``months`` after (or, negative, before) ``span``."""
    index = int(span[:4]) * 12 + int(span[5:7]) - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def parse_spans(text: str) -> list[str]:
    """Parses a span list: ``2013-01,2013-02`` or a range ``2013-01:2013-03``; sorted and unique.

    Raises:
        SpanError: A span id is not ``YYYY-MM``, a range runs backwards, or nothing is given.
    """
    spans: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if ":" in part:
            first, last = (s.strip() for s in part.split(":", 1))
            for span in (first, last):
                if not is_span_id(span):
                    raise SpanError(f"span {span!r} is not of the form YYYY-MM")
            if first > last:
                raise SpanError(f"span range {part!r} runs backwards")
            span = first
            while span <= last:
                spans.append(span)
                span = add_months(span, 1)
        else:
            if not is_span_id(part):
                raise SpanError(f"span {part!r} is not of the form YYYY-MM")
            spans.append(part)
    if not spans:
        raise SpanError("no span given")
    return sorted(set(spans))


def window_spans(train_spans: str, test_span: str) -> list[str]:
    """All span ids of a window (training spans and the test span), sorted and unique."""
    return sorted(set(parse_spans(train_spans) + parse_spans(test_span)))


def split_window(window: str) -> tuple[str, str]:
    """``2013-01:2013-04`` -> (train spans ``2013-01:2013-03``, test span ``2013-04``).

    Raises:
        SpanError: The window is not ``FIRST:LAST`` with at least two months.
    """
    first, _, last = window.partition(":")
    if not (is_span_id(first) and is_span_id(last)):
        raise SpanError(f"window {window!r} must look like 2013-01:2013-04 (train months, then the test month)")
    if last <= first:
        raise SpanError(f"window {window!r} needs at least two months: training months and a test month")
    return f"{first}:{add_months(last, -1)}", last


def window_for(spans: list[str], train_months: int) -> Optional[str]:
    """The run window over the newest spans: ``train_months`` training spans, then the newest as test span."""
    spans = sorted(spans)
    if len(spans) < 2:
        return None
    chosen = spans[-(train_months + 1):]
    return f"{chosen[0]}:{chosen[-1]}"
