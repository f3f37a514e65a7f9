"""TFDV statistics on Beam's DirectRunner in multi-process mode equal the in-process ones.

Real flights (a 5% sample of two 2013 months, written as an extracted dataset), real TFDV and
real Beam worker processes; compared feature by feature, then through the anomalies and drift
that validate_data derives from them.
"""

import math

import pandas as pd
import pytest

from components.beam_statistics import beam_span_statistics, parse_beam_args
from components.paths import REPO_ROOT
from components.validate_data import validation
from pipelines.examples.flights import dataset

MULTI_PROCESS = "--direct_num_workers=2 --direct_running_mode=multi_processing"


def _features(statistics):
    return {".".join(f.path.step): f for f in statistics.datasets[0].features}


def _close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _assert_same(beam, local, span):
    assert beam.datasets[0].num_examples == local.datasets[0].num_examples, span
    beam_features, local_features = _features(beam), _features(local)
    assert set(beam_features) == set(local_features), span
    for name, expected in local_features.items():
        got = beam_features[name]
        where = f"{span} {name}"
        assert got.type == expected.type, where
        if expected.HasField("num_stats"):
            e, g = expected.num_stats, got.num_stats
            assert g.common_stats.num_non_missing == e.common_stats.num_non_missing, where
            assert g.common_stats.num_missing == e.common_stats.num_missing, where
            for field in ("mean", "std_dev", "min", "max", "median", "num_zeros"):
                assert _close(getattr(g, field), getattr(e, field)), (where, field)
            standard = [(h, k) for h, k in zip(e.histograms, g.histograms) if h.type == 0]
            for histogram, other in standard:
                assert [round(b.sample_count, 6) for b in other.buckets] == \
                    [round(b.sample_count, 6) for b in histogram.buckets], where
        else:
            e, g = expected.string_stats, got.string_stats
            assert g.common_stats.num_non_missing == e.common_stats.num_non_missing, where
            assert g.common_stats.num_missing == e.common_stats.num_missing, where
            assert g.unique == e.unique, where
            assert [(v.value, v.frequency) for v in g.top_values] == [(v.value, v.frequency) for v in e.top_values]


@pytest.fixture(scope="module")
def extracted(flights, tmp_path_factory):
    """An extracted dataset folder: one Parquet file per span, as extract writes it."""
    folder = tmp_path_factory.mktemp("dataset")
    frames = {}
    for month in (3, 4):
        span = f"2013-{month:02d}"
        frame = flights[flights.month == month].copy()
        frame[dataset.SPAN_COLUMN] = span
        frame.to_parquet(folder / dataset.span_file(span), index=False)
        frames[span] = pd.read_parquet(folder / dataset.span_file(span))
    return str(folder), frames


def test_direct_runner_multi_process_statistics_equal_in_process(extracted):
    folder, frames = extracted
    local = validation.span_statistics(frames)
    beam = beam_span_statistics(folder, list(frames), parse_beam_args(MULTI_PROCESS))
    assert list(beam) == list(local)
    for span in local:
        _assert_same(beam[span], local[span], span)

    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(f"{REPO_ROOT}/pipelines/examples/flights/schema.pbtxt")
    limits = validation.SpanLimits()
    assert validation.schema_anomalies(beam, schema, limits) == validation.schema_anomalies(local, schema, limits)
    thresholds = validation.with_drift_thresholds(schema, 0.01, 0.01)
    beam_drift = validation.drift_between_spans(beam, thresholds)
    local_drift = validation.drift_between_spans(local, thresholds)
    assert [(r["feature"], r["drifted"]) for r in beam_drift] == [(r["feature"], r["drifted"]) for r in local_drift]
    assert all(math.isclose(ours["value"], theirs["value"], abs_tol=1e-6)
               for ours, theirs in zip(beam_drift, local_drift))


def test_beam_arguments_are_split_like_a_shell():
    assert parse_beam_args("--runner=FlinkRunner --flink_master='flink:8081' --parallelism=4") == [
        "--runner=FlinkRunner", "--flink_master=flink:8081", "--parallelism=4"]
    assert parse_beam_args("") == []
