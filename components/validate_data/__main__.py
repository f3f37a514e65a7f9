"""Program of the validate_data image: ``python -m components.validate_data --executor-input JSON``."""

import json
import os
import sys
import time

from components.beam_statistics import beam_span_statistics, parse_beam_args
from components.kfp_io import ComponentError, Executor, run_component
from components.validate_data import validation
from components.validate_data.statistics_view import statistics_view_html


def _run(executor: Executor) -> None:
    import tensorflow_data_validation as tfdv

    spec = executor.dataset_spec()
    spans = executor.input_metadata("dataset")["spans"]
    try:
        frames = validation.read_spans(executor.input_path("dataset"), spans)
        feeds = validation.read_feeds(executor.input_path("dataset"), spans, spec)
    except validation.UnreadableInputError as error:
        raise ComponentError(str(error)) from None
    started = time.perf_counter()
    beam_args = parse_beam_args(executor.param("beam_pipeline_args", ""))
    if beam_args:
        print(f"[validate_data] statistics on Beam: {' '.join(beam_args)}", flush=True)
        statistics = beam_span_statistics(executor.input_path("dataset"), spans, beam_args)
    else:
        statistics = validation.span_statistics(frames)
    # Kept for the benchmark that compares this step's TFDV throughput with a direct call.
    statistics_seconds = round(time.perf_counter() - started, 3)

    stats_dir = executor.output_path("statistics")
    os.makedirs(stats_dir, exist_ok=True)
    for span, stats in statistics.items():
        tfdv.write_stats_text(stats, os.path.join(stats_dir, f"{span}.pbtxt"))
    executor.set_metadata("statistics", {"spans": list(statistics), "statistics_seconds": statistics_seconds,
                                         "rows": sum(len(frame) for frame in frames.values()),
                                         "runner": " ".join(beam_args) if beam_args else "in process"})

    try:
        schema, inferred = validation.load_or_infer_schema(executor.param("schema_uri") or None,
                                                           next(iter(statistics.values())), spec.schema_text)
    except validation.UnreadableInputError as error:
        raise ComponentError(str(error)) from None
    tfdv.write_schema_text(schema, executor.output_path("schema"))
    source = executor.param("schema_uri") or ("inferred" if inferred else f"the {spec.name} spec's curated schema")
    executor.set_metadata("schema", {"inferred": inferred, "source": source})

    limits = span_limits(executor, spec)
    anomalies = validation.span_anomalies(frames, statistics, schema, spec, limits, feeds)
    drift = validation.drift_between_spans(statistics, validation.with_drift_thresholds(
        schema, float(executor.param("drift_js_threshold")), float(executor.param("drift_linf_threshold"))))
    drifted = sorted({f"{row['feature']}@{row['span']}" for row in drift if row["drifted"]})
    with open(executor.output_path("anomalies"), "w", encoding="utf-8") as handle:
        json.dump({"schema_anomalies": anomalies, "drift": drift}, handle, indent=2)
    summary = {"anomaly_count": sum(len(v) for v in anomalies.values()),
               "anomalous_spans": sorted(anomalies), "drifted": drifted}
    executor.set_metadata("anomalies", summary)

    with open(executor.output_path("report"), "w", encoding="utf-8") as handle:
        handle.write(validation.drift_html(drift, anomalies))
    with open(executor.output_path("statistics_view"), "w", encoding="utf-8") as handle:
        handle.write(statistics_view_html(statistics, anomalies, drift))

    print(f"[validate_data] spans: {', '.join(spans)}; drift over threshold: {', '.join(drifted) or 'none'}",
          flush=True)
    if anomalies:
        raise ComponentError("schema anomalies found; nothing is trained or deployed:\n"
                             + validation.describe_anomalies(anomalies))
    print("[validate_data] no schema anomalies", flush=True)


def span_limits(executor: Executor, spec) -> validation.SpanLimits:
    """The span limits: a pipeline parameter where given, else the spec's ``checks.span``, else the defaults."""
    limits = {}
    for name in ("min_rows_fraction", "max_rows_fraction", "max_label_rate_change", "max_missing_rate_change"):
        value = executor.param(name)
        if value not in (None, ""):
            try:
                limits[name] = float(value)
            except ValueError:
                raise ComponentError(f"{name}={value!r} is not a number (empty: the spec's value)") from None
        elif name in spec.checks.get("span", {}):
            limits[name] = float(spec.checks["span"][name])
    return validation.SpanLimits(**limits)


if __name__ == "__main__":
    sys.exit(run_component("validate_data", _run))
