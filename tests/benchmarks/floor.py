"""The compute floor of one CT pipeline run: the same work in one process, without orchestration.

Run with the monitor runtime (the one environment holding TFDV 1.16.1 and scikit-learn 1.7.2 together):
``.venvs/monitor/bin/python tests/benchmarks/floor.py SOURCE WINDOW [SPEC]`` (SPEC: a dataset spec,
default the flights example). Prints one JSON line of phase timings (seconds). What the pipeline
does per step, without its process starts, artifact files, model servers or kfp.local: read the
spans and their feature views' feeds, join them (the plain join the feature store's equals),
TFDV statistics + schema validation + drift, label and split, train, evaluate (+ serving
samples), judge, check the served predictions (in process: the same 200 rows twice and 100
single rows, as infra validation sends), publish to a registry.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

_STARTED = time.perf_counter()


def main(source_uri: str, window: str, spec_path: str = "", eval_fraction: float = 0.2) -> dict[str, float]:
    """Runs the work once; returns seconds per phase and the total (imports included)."""
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - clock[0], 3)
        clock[0] = now

    import pandas as pd
    import tensorflow_data_validation  # noqa: F401 - timed with the other imports
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401

    from components import registry
    from components.dataset_spec import DatasetSpec
    from components.evaluate.evaluate import evaluate
    from components.feature_views import plain_join
    from components.prepare.prepare import add_label, split
    from components.sources import open_source, read_feed
    from components.spans import SPAN_COLUMN, split_window, window_spans
    from components.train.train import save, save_reference, serving_samples, train
    from components.validate_data import validation
    from components.validate_model.validate_model import judge
    from pipelines.examples import DEFAULT_SPEC
    spec = DatasetSpec.load(spec_path or DEFAULT_SPEC)
    lap("imports")

    spans = window_spans(*split_window(window, spec.granularity), spec.granularity)
    source = open_source(source_uri)
    main_feed = spec.feeds[spec.main_feed]
    frames, readings = {}, {}
    for span in spans:
        frames[span] = read_feed(source.read_bytes(span, main_feed.file), main_feed)
        readings[span] = {view.name: read_feed(source.read_bytes(span, spec.feeds[view.feed].file),
                                               spec.feeds[view.feed])
                          for view in spec.feature_views if source.has(span, spec.feeds[view.feed].file)}
    lap("read")
    for span in spans:  # join_features' work, as a plain join (the feature store's gives the same rows)
        for view in spec.feature_views:
            if view.name in readings[span]:
                frames[span] = plain_join(frames[span], readings[span][view.name], view)
        frames[span][SPAN_COLUMN] = span
    lap("join")

    statistics = validation.span_statistics(frames)
    # The spec's curated schema, as validate_data reads it (an inferred one refuses the later months' values).
    schema, _ = validation.load_or_infer_schema(None, next(iter(statistics.values())), spec.schema_text)
    anomalies = validation.schema_anomalies(statistics, schema)
    validation.drift_between_spans(statistics, validation.with_drift_thresholds(schema, 0.1, 0.1))
    if anomalies:
        raise SystemExit(f"schema anomalies: {anomalies}")
    lap("tfdv")

    train_frame, eval_frame, test_frame = split(add_label(pd.concat(frames.values(), ignore_index=True), spec),
                                                spec, spans[-1], eval_fraction)
    lap("prepare")

    hyperparameters = {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 15, "l2_regularization": 0.0}
    pipeline, _ = train(train_frame, eval_frame, spec, hyperparameters)
    model_dir = tempfile.mkdtemp(prefix="floor-model-")
    save(pipeline, model_dir, spec, {"hyperparameters": hyperparameters, "train_spans": spans[:-1]})
    save_reference(train_frame, model_dir, spec)
    lap("train")

    result = evaluate(pipeline, test_frame, spec, None)
    samples = serving_samples(pipeline, test_frame, spec)
    lap("evaluate")

    blessed, _ = judge(result["candidate"], None, spec.metric["primary"], spec.metric_direction, 0.5, 0.01)
    lap("validate_model")

    from components.model_files import load_model as load

    served = load(model_dir)
    rows = pd.DataFrame(samples["instances"])[spec.features]
    for _ in range(2):  # V1 and V2 batches
        served.predict_proba(rows)
    for i in range(110):  # 10 warm-up + 100 timed single rows
        served.predict_proba(rows.iloc[[i % len(rows)]])
    lap("serve_check")

    registry.publish(tempfile.mkdtemp(prefix="floor-registry-"), spec.model_name, model_dir,
                     {"metrics": result["candidate"], "blessed": blessed})
    lap("publish")
    timings["total"] = round(time.perf_counter() - _STARTED, 3)
    timings["rows"] = int(sum(len(frame) for frame in frames.values()))
    return timings


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")))
