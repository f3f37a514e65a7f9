"""A statistics view that renders anywhere: one HTML file, inline CSS and SVG, no script, no external resource.

TFDV's own view (Facets) loads its JavaScript and an HTML import from public CDNs when it is
opened, so offline (an air-gapped cluster, a headless browser here) it is a blank page. This
view draws, per feature, each span side by side: a histogram for a numeric feature (TFDV's
standard histogram), the top values for a categorical one, the missing rate, and the drift and
anomaly marks of the run, from the same statistics protos.
"""

from __future__ import annotations

from html import escape
from typing import Any

_WIDTH, _HEIGHT, _TOP_VALUES = 200, 84, 8
_STYLE = """
body{font-family:system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:20px;margin:0 0 4px}
.note{color:#555;font-size:13px;margin-bottom:16px}
.feature{border-top:1px solid #ddd;padding:10px 0}
.feature h2{font-size:15px;margin:0 0 6px}
.kind{color:#777;font-weight:normal;font-size:12px}
.mark{display:inline-block;font-size:11px;padding:1px 6px;border-radius:8px;margin-left:6px;color:#fff}
.drift{background:#c77700}.anomaly{background:#b00020}
.spans{display:flex;flex-wrap:wrap;gap:10px}
.span{border:1px solid #ddd;border-radius:4px;padding:6px;width:210px;font-size:11px}
.span.flagged{border-color:#b00020;background:#fff5f5}
.span.drifted{border-color:#c77700;background:#fffaf0}
.span b{font-size:12px}
.why{color:#b00020}
"""


def _name(feature) -> str:
    return ".".join(feature.path.step) or feature.name


def _features(statistics) -> dict[str, Any]:
    """Feature name -> FeatureNameStatistics of the first dataset of a statistics list."""
    if not statistics.datasets:
        return {}
    return {_name(feature): feature for feature in statistics.datasets[0].features}


def _common(feature):
    return feature.num_stats.common_stats if feature.HasField("num_stats") else feature.string_stats.common_stats


def _missing_rate(feature) -> float:
    common = _common(feature)
    total = common.num_missing + common.num_non_missing
    return common.num_missing / total if total else 0.0


def _histogram_svg(feature) -> str:
    """Bars of TFDV's standard histogram (equal-width buckets)."""
    standard = [h for h in feature.num_stats.histograms if h.type == 0]  # Histogram.STANDARD
    buckets = list(standard[0].buckets) if standard else []
    if not buckets:
        return "<p>no values</p>"
    top = max(b.sample_count for b in buckets) or 1
    width = _WIDTH / len(buckets)
    bars = "".join(
        f"<rect x='{i * width:.1f}' y='{_HEIGHT - 14 - (b.sample_count / top) * (_HEIGHT - 18):.1f}' "
        f"width='{max(width - 1, 1):.1f}' height='{(b.sample_count / top) * (_HEIGHT - 18):.1f}' fill='#3b6fb6'>"
        f"<title>{b.low_value:g} to {b.high_value:g}: {b.sample_count:,.0f}</title></rect>"
        for i, b in enumerate(buckets))
    low, high = buckets[0].low_value, buckets[-1].high_value
    labels = (f"<text x='0' y='{_HEIGHT - 2}' font-size='10'>{low:g}</text>"
              f"<text x='{_WIDTH}' y='{_HEIGHT - 2}' font-size='10' text-anchor='end'>{high:g}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{_HEIGHT}' role='img'>"
            f"{bars}{labels}</svg>")


def _top_values_svg(feature) -> str:
    """Horizontal bars of the most frequent values, as shares of the non-missing values."""
    values = list(feature.string_stats.top_values)[:_TOP_VALUES]
    present = _common(feature).num_non_missing or 1
    if not values:
        return "<p>no values</p>"
    widest = values[0].frequency or 1
    row = 10
    height = row * len(values) + 2
    bars = "".join(
        f"<text x='0' y='{i * row + 8}' font-size='9'>{escape(v.value[:10])}</text>"
        f"<rect x='62' y='{i * row + 1}' width='{(_WIDTH - 100) * v.frequency / widest:.1f}' height='{row - 2}' "
        f"fill='#5a9e6f'><title>{escape(v.value)}: {v.frequency:,.0f}</title></rect>"
        f"<text x='{_WIDTH}' y='{i * row + 8}' font-size='9' text-anchor='end'>{v.frequency / present:.1%}</text>"
        for i, v in enumerate(values))
    return f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{height}' role='img'>{bars}</svg>"


def statistics_view_html(statistics_by_span: dict[str, Any], anomalies_by_span: dict[str, list[dict[str, str]]],
                         drift_rows: list[dict[str, Any]]) -> str:
    """The view: a section per feature, a card per span with its distribution, missing rate and marks.

    Args:
        statistics_by_span: Span id -> DatasetFeatureStatisticsList, in span order.
        anomalies_by_span: Span id -> anomalies (``feature``, ``short_description``), as validate_data reports them.
        drift_rows: Drift measurements (``span``, ``feature``, ``measure``, ``value``, ``threshold``, ``drifted``).
    """
    spans = list(statistics_by_span)
    by_span = {span: _features(stats) for span, stats in statistics_by_span.items()}
    names = sorted({name for features in by_span.values() for name in features})
    drifted = {(r["span"], r["feature"]): r for r in drift_rows if r["drifted"]}
    flagged: dict[tuple[str, str], list[str]] = {}
    for span, found in anomalies_by_span.items():
        for anomaly in found:
            flagged.setdefault((span, anomaly["feature"]), []).append(anomaly["short_description"])
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Statistics per span</title>",
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>Statistics per span: {escape(spans[0]) if spans else ''}"
             f"{' to ' + escape(spans[-1]) if len(spans) > 1 else ''}</h1>",
             "<p class='note'>TFDV statistics of each span side by side; drift is measured against the span before, "
             "anomalies against the schema. Bars hold their counts as tooltips.</p>"]
    for name in names:
        marks = ""
        if any(feature == name for _, feature in drifted):
            marks += "<span class='mark drift'>drift</span>"
        if any(feature == name for _, feature in flagged):
            marks += "<span class='mark anomaly'>anomaly</span>"
        kind = next((("numeric" if f.HasField("num_stats") else "categorical")
                     for f in (by_span[s].get(name) for s in spans) if f is not None), "")
        parts.append(f"<section class='feature' id='{escape(name)}'><h2>{escape(name)} "
                     f"<span class='kind'>{kind}</span>{marks}</h2><div class='spans'>")
        for span in spans:
            feature = by_span[span].get(name)
            css = "span flagged" if (span, name) in flagged else "span drifted" if (span, name) in drifted else "span"
            parts.append(f"<div class='{css}'><b>{escape(span)}</b>")
            if feature is None:
                parts.append("<p>absent</p></div>")
                continue
            parts.append(_histogram_svg(feature) if feature.HasField("num_stats") else _top_values_svg(feature))
            parts.append(f"<div>missing {_missing_rate(feature):.1%}</div>")
            if (span, name) in drifted:
                row = drifted[(span, name)]
                parts.append(f"<div>drift {escape(row['measure'])} {row['value']:.3f} &gt; {row['threshold']:g}</div>")
            for why in flagged.get((span, name), []):
                parts.append(f"<div class='why'>{escape(why)}</div>")
            parts.append("</div>")
        parts.append("</div></section>")
    parts.append("</body></html>")
    return "\n".join(parts)
