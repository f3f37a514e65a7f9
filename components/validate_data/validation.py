"""Data validation with TFDV: statistics per span, schema anomalies, drift between spans.

Schema anomalies (missing or unexpected columns, wrong types, values outside their physical
domain, too few rows) and span-level anomalies against the previous span (row count, label
rate, per-feature missing rate) fail the run. Drift between consecutive spans is measured and
reported against the reporting thresholds; beyond a feature's fatal limit (the spec's
``checks.fatal_drift``, calibrated on the data by ``drift_limits``, far looser) it fails the run:
a unit or scale change that keeps values inside their domain. TFDV checks what it can (the
schema, the row count through its ``num_examples_drift_comparator``, the drift measures); this
module checks only what TFDV has nothing for (label rate, missing-rate change, duplicate keys,
event times outside the span, and the named value checks a dataset spec applies, such as the
minutes of HHMM clock times).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from components.frames import event_times
from components.kfp_io import error_line
from components.spans import SPAN_COLUMN, span_bounds, span_file


@dataclass(frozen=True)
class SpanLimits:
    """How far a span may depart from the span before it.

    Defaults are calibrated on the twelve months of 2013 (rows 0.92x-1.16x month to month, label
    rate change <= 0.154 on all flights and 0.172 on a 10% slice, missing-rate change <= 0.102),
    with room to spare.
    """

    min_rows_fraction: float = 0.5
    max_rows_fraction: float = 2.0
    max_label_rate_change: float = 0.25
    max_missing_rate_change: float = 0.25



class UnreadableInputError(Exception):
    """A span file or the schema cannot be read: the message names it and what is wrong, in one line."""


def read_spans(dataset_dir: str, spans: list[str]) -> dict[str, object]:
    """Reads each span of an extracted dataset folder as its own DataFrame, types as they came.

    Each column is read by its logical type (``components.frames.logical_types``): a string
    column dictionary-encoded, or a float32 one, is the same data as the plain one.

    Raises:
        UnreadableInputError: A span's file is missing, unreadable or not Parquet, or holds a
            column of a type no step reads (one line: span, file, column, type).
    """
    import pandas as pd

    from components.frames import UnreadableTypeError, logical_types

    frames = {}
    for span in sorted(spans):
        path = os.path.join(dataset_dir, span_file(span))
        try:
            raw = pd.read_parquet(path)
        except Exception as error:  # noqa: BLE001 - pyarrow raises several types; all mean "unreadable"
            raise UnreadableInputError(f"span {span}: {path}: {error_line(error)}") from None
        try:
            frames[span] = logical_types(raw, f"span {span}: {path}")
        except UnreadableTypeError as error:
            raise UnreadableInputError(str(error)) from None
    return frames



def span_statistics(frames: dict[str, object], span_column: str = SPAN_COLUMN) -> dict[str, object]:
    """Computes TFDV statistics for each span.

    Args:
        frames: Span id -> the span's rows (a span without rows gets statistics
            of zero examples, which the schema's minimum row count rejects).
        span_column: Column naming each row's span; left out of the statistics.

    Returns:
        Span id -> ``DatasetFeatureStatisticsList``, in span order.
    """
    import tensorflow_data_validation as tfdv

    return {
        span: tfdv.generate_statistics_from_dataframe(
            frames[span].drop(columns=[span_column], errors="ignore").reset_index(drop=True))
        for span in sorted(frames)
    }


def load_or_infer_schema(schema_path: Optional[str], statistics, schema_text: Optional[str] = None) -> tuple:
    """Loads the schema at ``schema_path``, else parses ``schema_text`` (the spec's), else infers one.

    Returns:
        ``(schema, inferred)``: the Schema proto and whether it was inferred.

    Raises:
        UnreadableInputError: The schema does not parse (or ``schema_path`` does not exist).
    """
    import tensorflow_data_validation as tfdv
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    if schema_path:
        if not os.path.exists(schema_path):
            raise UnreadableInputError(f"schema {schema_path} does not exist")
        try:
            return tfdv.load_schema_text(schema_path), False
        except Exception as error:  # noqa: BLE001 - text_format raises ParseError, reading OSError or UnicodeError
            raise UnreadableInputError(f"schema {schema_path} does not parse: {error_line(error)}") from None
    if schema_text is not None:
        try:
            return text_format.Parse(schema_text, schema_pb2.Schema()), False
        except text_format.ParseError as error:
            raise UnreadableInputError(f"the dataset spec's schema does not parse: {error_line(error)}") from None
    return tfdv.infer_schema(statistics), True


def _anomaly_list(anomalies) -> list[dict[str, str]]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    def entry(feature, info):
        kinds = sorted({anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason})
        return {"feature": feature, "kind": ",".join(kinds),
                "short_description": info.short_description, "description": info.description}

    found = [entry(feature, info) for feature, info in sorted(anomalies.anomaly_info.items())]
    if anomalies.HasField("dataset_anomaly_info"):
        found.append(entry("(dataset)", anomalies.dataset_anomaly_info))
    return found


def _checks_only(schema, limits: SpanLimits):
    """The schema for the checks that fail a run.

    Drift comparators are left out (drift is reported, never fatal); the row-count comparator
    takes ``limits``.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    copy = schema_pb2.Schema()
    copy.CopyFrom(schema)
    for feature in copy.feature:
        feature.ClearField("drift_comparator")
    comparator = copy.dataset_constraints.num_examples_drift_comparator
    comparator.min_fraction_threshold = limits.min_rows_fraction
    comparator.max_fraction_threshold = limits.max_rows_fraction
    return copy


def schema_anomalies(statistics_by_span: dict[str, object], schema,
                     limits: Optional[SpanLimits] = None) -> dict[str, list[dict[str, str]]]:
    """Validates each span's statistics against the schema, and its row count against the previous span's.

    Returns:
        Span id -> list of anomalies (feature, kind, short and long description);
        spans without anomalies are left out.
    """
    import tensorflow_data_validation as tfdv

    result = {}
    checks = _checks_only(schema, limits or SpanLimits())
    minimum = schema.dataset_constraints.min_examples_count
    previous = None
    for span, stats in statistics_by_span.items():
        found = _anomaly_list(tfdv.validate_statistics(stats, checks, previous_statistics=previous))
        previous = stats
        rows = stats.datasets[0].num_examples if stats.datasets else 0
        # TFDV skips dataset constraints for a dataset without examples; an empty span must still fail.
        if rows < minimum and not any(a["kind"] == "DATASET_LOW_NUM_EXAMPLES" for a in found):
            found.append({"feature": "(dataset)", "kind": "DATASET_LOW_NUM_EXAMPLES",
                          "short_description": "Low num examples in dataset",
                          "description": f"the span has {rows} rows; the schema requires at least {minimum}"})
        if found:
            result[span] = found
    return result


def _anomaly(feature: str, kind: str, short: str, description: str) -> dict[str, str]:
    return {"feature": feature, "kind": kind, "short_description": short, "description": description}


def history_anomalies(frames: dict[str, object], spec, limits: Optional[SpanLimits] = None) -> dict[str, list[dict]]:
    """What TFDV does not check: label rate and missing rates against the previous span, the spec's value checks.

    Args:
        frames: Span id -> the span's rows.
        spec: The dataset spec (``DatasetSpec``): label rule and named value checks.
        limits: Allowed change against the previous span.

    Returns:
        Span id -> anomalies, in the shape of ``schema_anomalies``; clean spans left out.
    """
    limits = limits or SpanLimits()
    found: dict[str, list[dict]] = {}
    spans = sorted(frames)
    for span, anomaly in row_anomalies(frames, spec):
        found.setdefault(span, []).append(anomaly)
    facts = {span: _span_facts(frames[span], spec) for span in spans}
    for span in spans:
        for check, feature, bad in facts[span]["value_checks"]:
            kind, short, problem = VALUE_CHECKS[check][1:]
            found.setdefault(span, []).append(_anomaly(feature, kind, short, f"{bad} values of {feature} {problem}"))
    for previous, span in zip(spans, spans[1:]):
        before, now = facts[previous], facts[span]
        if before["label_rate"] is not None and now["label_rate"] is not None:
            change = now["label_rate"] - before["label_rate"]
            if abs(change) > limits.max_label_rate_change:
                found.setdefault(span, []).append(_anomaly(
                    ",".join(spec.label_columns), "LABEL_RATE_CHANGE", "Label rate departs from the previous span",
                    f"{now['label_rate']:.3f} of the rows are {spec.label}, against "
                    f"{before['label_rate']:.3f} in {previous} (change {change:+.3f}, allowed "
                    f"{limits.max_label_rate_change})"))
        for feature, rate in now["missing"].items():
            if feature not in before["missing"]:
                continue
            change = rate - before["missing"][feature]
            if abs(change) > limits.max_missing_rate_change:
                found.setdefault(span, []).append(_anomaly(
                    feature, "MISSING_RATE_CHANGE", "Missing rate departs from the previous span",
                    f"{rate:.3f} of the rows lack {feature}, against {before['missing'][feature]:.3f} in "
                    f"{previous} (change {change:+.3f}, allowed {limits.max_missing_rate_change})"))
    return found


#: The feature named by the row checks' anomalies (the main feed's; another feed's names the feed).
PRIMARY_KEY = "(primary key)"
EVENT_TIME = "(event time)"
#: Example keys quoted in a row check's description.
EXAMPLES = 3


def row_check_names(spec, feed_name: str) -> tuple[str, str]:
    """The features a feed's row checks name: ``(primary key)``, ``(event time)``, or ``(... of the X feed)``."""
    if feed_name == spec.main_feed:
        return PRIMARY_KEY, EVENT_TIME
    return f"(primary key of the {feed_name} feed)", f"(event time of the {feed_name} feed)"


def row_anomalies(frames: dict[str, object], spec, feed_name: Optional[str] = None) -> list[tuple[str, dict]]:
    """Rows that break a feed's identity or time: duplicate primary keys, event times outside the span.

    A key is unique within its span and across the window's spans (a re-delivered row of an
    earlier span is a duplicate too); each row's event time (the feed's ``event_time``) lies in
    its span's period, widened by ``tolerance_seconds``. Columns a check needs that are missing
    or unreadable leave it to the schema check, which names them.

    Args:
        frames: Span id -> the feed's rows of that span.
        spec: The dataset spec.
        feed_name: The feed (default: the main feed).

    Returns:
        ``(span, anomaly)`` pairs, each naming the check, the count and a few example keys.
    """
    import numpy as np
    import pandas as pd

    feed_name = feed_name or spec.main_feed
    feed = spec.feeds[feed_name]
    key_name, time_name = row_check_names(spec, feed_name)
    rows_of = "rows" if feed_name == spec.main_feed else f"rows of the {feed_name} feed"
    key = list(feed.primary_key)
    found = []
    earlier: list = []
    for span in sorted(frames):
        frame = frames[span]
        if not len(frame):
            continue
        if key and all(name in frame for name in key):
            hashes = pd.util.hash_pandas_object(frame[key].astype(str), index=False).to_numpy()
            within = pd.Series(hashes).duplicated(keep="first").to_numpy()
            again = np.isin(hashes, np.concatenate(earlier)) if earlier else np.zeros(len(frame), dtype=bool)
            if within.any() or again.any():
                parts = []
                if within.any():
                    parts.append(f"{int(within.sum())} {rows_of} repeat a key of this span")
                if again.any():
                    parts.append(f"{int(again.sum())} {rows_of} repeat a key of an earlier span of the window")
                found.append((span, _anomaly(
                    key_name, "DUPLICATE_KEY", "Rows with the same primary key",
                    f"{'; '.join(parts)} (primary key {', '.join(key)}; e.g. "
                    f"{_examples(frame[within | again], key)})")))
            earlier.append(hashes)
        times = event_times(frame, feed)
        if times is None:
            continue
        start, end = span_bounds(span, spec.granularity)
        tolerance = pd.Timedelta(seconds=float(feed.event_time.get("tolerance_seconds", 0)))
        outside = ~((times >= start - tolerance) & (times < end + tolerance)).to_numpy()
        if outside.any():
            shown = key or [column for column in frame.columns if column != SPAN_COLUMN][:3]
            found.append((span, _anomaly(
                time_name, "EVENT_TIME_OUTSIDE_SPAN", "Rows whose event time lies outside the span",
                f"{int(outside.sum())} {rows_of} have an event time outside {span} ({start:%Y-%m-%d %H:%M} to "
                f"{end:%Y-%m-%d %H:%M}, tolerance {tolerance.total_seconds():g} s) or none at all; e.g. "
                f"{_examples(frame[outside], shown, times[outside])}")))
    return found


def read_feeds(dataset_dir: str, spans: list[str], spec) -> dict[str, dict[str, object]]:
    """The other feeds' rows of each span, as extraction wrote them (``feeds/<feed>/<span>.parquet``).

    Returns:
        Feed name -> span id -> rows; a span without a feed's file is left out.

    Raises:
        UnreadableInputError: A file cannot be read (one line naming it).
    """
    import pandas as pd

    from components.frames import UnreadableTypeError, logical_types
    from components.spans import feed_span_file

    feeds: dict[str, dict[str, object]] = {}
    for name in spec.feeds:
        if name == spec.main_feed:
            continue
        for span in sorted(spans):
            path = os.path.join(dataset_dir, feed_span_file(name, span))
            if not os.path.exists(path):
                continue
            try:
                frame = pd.read_parquet(path)
                feeds.setdefault(name, {})[span] = logical_types(frame, f"{name} of span {span}: {path}")
            except UnreadableTypeError as error:
                raise UnreadableInputError(str(error)) from None
            except Exception as error:  # noqa: BLE001 - pyarrow raises several types; all mean "unreadable"
                raise UnreadableInputError(f"{name} of span {span}: {path}: {error_line(error)}") from None
    return feeds


def feed_row_anomalies(feeds: dict[str, dict[str, object]], spec) -> dict[str, list[dict]]:
    """``row_anomalies`` of each feed other than the main one (``read_feeds``), by span."""
    found: dict[str, list[dict]] = {}
    for name, frames in feeds.items():
        for span, anomaly in row_anomalies(frames, spec, name):
            found.setdefault(span, []).append(anomaly)
    return found


def _examples(rows, key: list[str], times=None) -> str:
    import pandas as pd

    shown = []
    for position, (_, row) in enumerate(rows.head(EXAMPLES).iterrows()):
        text = ", ".join(f"{name}={row[name]}" for name in key)
        if times is not None:
            moment = times.iloc[position]
            text += " without an event time" if pd.isna(moment) else f" at {moment}"
        shown.append(f"({text})")
    return "; ".join(shown)


def _hhmm_minutes_out_of_range(values) -> int:
    return int(((values % 100) >= 60).sum())


#: Named value checks a dataset spec applies to columns (``checks.values``): the count of bad values,
#: the anomaly kind, its short description and what is wrong with the values.
VALUE_CHECKS = {
    "hhmm_clock": (_hhmm_minutes_out_of_range, "CLOCK_TIME_MINUTES_OUT_OF_RANGE",
                   "Clock time with 60 minutes or more", "(HHMM) have minutes of 60 or more"),
}


def _label_rate(frame, spec) -> Optional[float]:
    """The share of positive labels of a binary dataset's span (None for a regression or when not computable)."""
    from components.labels import label_values

    if spec.task != "binary_classification" or any(name not in frame for name in spec.label_columns):
        return None
    try:
        labels = label_values(spec, frame).dropna()
    except (TypeError, ValueError):  # a source column of the wrong type: the schema check names it
        return None
    return float(labels.mean()) if len(labels) else None


def _span_facts(frame, spec) -> dict[str, object]:
    import pandas as pd

    checked = []
    for check, features in spec.value_checks().items():
        for feature in features:
            if feature in frame:
                bad = VALUE_CHECKS[check][0](pd.to_numeric(frame[feature], errors="coerce").dropna())
                if bad:
                    checked.append((check, feature, bad))
    columns = [c for c in frame.columns if c != SPAN_COLUMN]
    return {"label_rate": _label_rate(frame, spec),
            "missing": {c: float(frame[c].isna().mean()) for c in columns} if len(frame) else {},
            "value_checks": checked}


def merge_anomalies(*found: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Anomalies by span from several checks, in span order."""
    merged: dict[str, list[dict]] = {}
    for part in found:
        for span, anomalies in part.items():
            merged.setdefault(span, []).extend(anomalies)
    return dict(sorted(merged.items()))


def span_anomalies(frames: dict[str, object], statistics_by_span: dict[str, object], schema, spec,
                   limits: Optional[SpanLimits] = None,
                   feeds: Optional[dict[str, dict[str, object]]] = None) -> dict[str, list[dict]]:
    """Every check that fails a run: the schema's, the spans' history, the rows' of every feed, fatal drift.

    Args:
        frames: Span id -> the main feed's rows (feature views joined).
        statistics_by_span: Their TFDV statistics.
        schema: The curated schema.
        spec: The dataset spec.
        limits: Allowed change against the previous span.
        feeds: The other feeds' rows (``read_feeds``), for their row checks.

    Returns:
        Span id -> anomalies (feature, kind, short and long description), in span order; clean spans left out.
    """
    return merge_anomalies(schema_anomalies(statistics_by_span, schema, limits),
                           history_anomalies(frames, spec, limits), feed_row_anomalies(feeds or {}, spec),
                           fatal_drift_anomalies(statistics_by_span, schema, spec.checks.get("fatal_drift", {})))


#: The anomaly kind of a drift beyond a feature's fatal limit.
FATAL_DRIFT = "FATAL_DRIFT"
MEASURE_NAMES = {"JENSEN_SHANNON_DIVERGENCE": "Jensen-Shannon divergence", "L_INFTY": "L-infinity distance"}


def with_comparators(schema, thresholds: dict[str, float]):
    """A copy of the schema comparing exactly the given features, each with its threshold.

    Numbers by Jensen-Shannon divergence, strings by L-infinity distance (as ``make schema``
    declares them); features the schema does not know are left out (its own checks name them).
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    copy = schema_pb2.Schema()
    copy.CopyFrom(schema)
    for feature in copy.feature:
        feature.ClearField("drift_comparator")
        if feature.name not in thresholds:
            continue
        if feature.type == schema_pb2.BYTES:
            feature.drift_comparator.infinity_norm.threshold = thresholds[feature.name]
        else:
            feature.drift_comparator.jensen_shannon_divergence.threshold = thresholds[feature.name]
    return copy


def fatal_drift_anomalies(statistics_by_span: dict[str, object], schema,
                          fatal_limits: dict[str, float]) -> dict[str, list[dict]]:
    """Features whose drift against the previous span passes their fatal limit.

    Args:
        statistics_by_span: Span id -> TFDV statistics, in span order.
        schema: The schema (the feature types choose the measure).
        fatal_limits: Feature -> fatal limit (the spec's ``checks.fatal_drift``).

    Returns:
        Span id -> anomalies, in the shape of ``schema_anomalies``; clean spans left out.
    """
    if not fatal_limits:
        return {}
    found: dict[str, list[dict]] = {}
    for row in drift_between_spans(statistics_by_span, with_comparators(schema, fatal_limits)):
        if row["drifted"]:
            measure = MEASURE_NAMES.get(row["measure"], row["measure"])
            found.setdefault(row["span"], []).append(_anomaly(
                row["feature"], FATAL_DRIFT, "Drift beyond the feature's fatal limit",
                f"{measure} {row['value']:.3f} against {row['previous_span']}, beyond the fatal limit "
                f"{row['threshold']:g} (calibrated on the data's own largest drift): a change of unit, "
                "scale or source?"))
    return found


def with_drift_thresholds(schema, js_threshold: float, linf_threshold: float):
    """Returns a copy of the schema whose drift comparators use the given thresholds.

    The curated schema says which features are compared and how (Jensen-Shannon
    divergence for numeric features, L-infinity distance for categorical ones);
    the thresholds come from pipeline configuration.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    copy = schema_pb2.Schema()
    copy.CopyFrom(schema)
    for feature in copy.feature:
        if feature.drift_comparator.HasField("jensen_shannon_divergence"):
            feature.drift_comparator.jensen_shannon_divergence.threshold = js_threshold
        if feature.drift_comparator.HasField("infinity_norm"):
            feature.drift_comparator.infinity_norm.threshold = linf_threshold
    return copy


def drift_between_spans(statistics_by_span: dict[str, object], schema) -> list[dict[str, object]]:
    """Measures drift of each span against the span before it.

    Returns:
        One entry per (span, feature) compared: span, previous span, feature,
        measure, value, threshold and whether the threshold is exceeded.
    """
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    spans = list(statistics_by_span)
    rows = []
    for previous, span in zip(spans, spans[1:]):
        anomalies = tfdv.validate_statistics(
            statistics_by_span[span], schema, previous_statistics=statistics_by_span[previous])
        for info in anomalies.drift_skew_info:
            feature = ".".join(info.path.step)
            for measurement in info.drift_measurements:
                rows.append({
                    "span": span,
                    "previous_span": previous,
                    "feature": feature,
                    "measure": anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(measurement.type),
                    "value": round(float(measurement.value), 6),
                    "threshold": float(measurement.threshold),
                    "drifted": bool(measurement.value > measurement.threshold),
                })
    return rows


def describe_anomalies(anomalies_by_span: dict[str, list[dict[str, str]]]) -> str:
    """One line per anomaly: ``span 2013-04: carrier: Unexpected string values (...)``."""
    lines = []
    for span, found in anomalies_by_span.items():
        for anomaly in found:
            lines.append(f"span {span}: {anomaly['feature']}: {anomaly['short_description']} "
                         f"[{anomaly['kind']}] {anomaly['description']}")
    return "\n".join(lines)


def drift_html(drift_rows: list[dict[str, object]], anomalies_by_span: dict[str, list]) -> str:
    """A small HTML report: schema anomalies, then drift per span and feature."""
    from html import escape

    parts = ["<html><head><meta charset='utf-8'><title>Data validation</title>",
             "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
             ".bad{color:#b00;font-weight:bold}</style></head><body>",
             "<h2>Anomalies (schema and span checks)</h2>"]
    if anomalies_by_span:
        parts.append("<ul>")
        for span, found in anomalies_by_span.items():
            for a in found:
                parts.append(f"<li class='bad'>span {escape(span)}: {escape(a['feature'])}: "
                             f"{escape(a['short_description'])} — {escape(a['description'])}</li>")
        parts.append("</ul>")
    else:
        parts.append("<p>None.</p>")
    parts.append("<h2>Drift against the previous span</h2><table><tr><th>span</th><th>previous</th>"
                 "<th>feature</th><th>measure</th><th>value</th><th>threshold</th></tr>")
    for row in drift_rows:
        css = " class='bad'" if row["drifted"] else ""
        parts.append(f"<tr{css}><td>{row['span']}</td><td>{row['previous_span']}</td>"
                     f"<td>{escape(str(row['feature']))}</td><td>{row['measure']}</td>"
                     f"<td>{row['value']:.4f}</td><td>{row['threshold']}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)
