import numpy as np
import pandas as pd
import pytest

from components.dataset_spec import DatasetSpec
from components.paths import REPO_ROOT
from components.validate_data import validation
from pipelines.examples.flights import dataset

FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")


def _schema():
    import tensorflow_data_validation as tfdv

    return tfdv.load_schema_text(FLIGHTS.schema_path)


def _with_span(frame, span):
    frame = frame.copy()
    frame[dataset.SPAN_COLUMN] = span
    return frame


def _by_span(frame):
    return {span: part for span, part in frame.groupby(dataset.SPAN_COLUMN)}


def _anomalies(frame, spans):
    frames = _by_span(frame)
    for span in spans:  # a span without rows
        frames.setdefault(span, frame.iloc[:0])
    return validation.schema_anomalies(validation.span_statistics(frames), _schema())


def test_real_months_pass_the_curated_schema(flights):
    frame = pd.concat([_with_span(flights[flights.month == m], f"2013-{m:02d}") for m in (1, 7, 12)])
    assert _anomalies(frame, ["2013-01", "2013-07", "2013-12"]) == {}


def test_curated_schema_is_not_the_raw_inferred_one():
    schema = _schema()
    carrier = next(f for f in schema.feature if f.name == "carrier")
    assert carrier.distribution_constraints.min_domain_mass == 1.0
    assert carrier.drift_comparator.infinity_norm.threshold > 0
    dep_delay = next(f for f in schema.feature if f.name == "dep_delay")
    assert 0 < dep_delay.presence.min_fraction < 1
    assert dep_delay.drift_comparator.jensen_shannon_divergence.threshold > 0
    assert schema.dataset_constraints.min_examples_count >= 1


def _corrupt(flights, kind):
    from span_tools import corrupt

    return _with_span(corrupt(flights[flights.month == 4], kind), "2013-04")


@pytest.mark.parametrize("kind, feature, anomaly", [
    ("missing_column", "carrier", "SCHEMA_MISSING_COLUMN"),
    ("unexpected_column", "seat_pitch", "SCHEMA_NEW_COLUMN"),
    ("changed_type", "distance", "UNEXPECTED_DATA_TYPE"),
    ("out_of_domain", "carrier", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"),
    ("empty_span", "(dataset)", "DATASET_LOW_NUM_EXAMPLES"),
])
def test_each_schema_violation_is_named(flights, kind, feature, anomaly):
    found = _anomalies(_corrupt(flights, kind), ["2013-04"])
    assert list(found) == ["2013-04"]
    kinds = {a["feature"]: a["kind"] for a in found["2013-04"]}
    assert anomaly in kinds.get(feature, ""), kinds
    assert feature in validation.describe_anomalies(found)


def test_drift_is_flagged_above_the_threshold_and_not_below(flights):
    frame = pd.concat([_with_span(flights[flights.month == 1], "2013-01"),
                       _with_span(flights[flights.month == 7], "2013-07")])
    stats = validation.span_statistics(_by_span(frame))
    strict = validation.drift_between_spans(stats, validation.with_drift_thresholds(_schema(), 0.05, 0.05))
    loose = validation.drift_between_spans(stats, validation.with_drift_thresholds(_schema(), 1.0, 1.0))
    temp = next(r for r in strict if r["feature"] == "temp")
    assert temp["measure"] == "JENSEN_SHANNON_DIVERGENCE" and temp["drifted"] and temp["value"] > 0.05
    assert not any(r["drifted"] for r in loose)
    assert {r["feature"] for r in strict} >= {"carrier", "dep_delay", "temp"}


def test_reports_render(flights):
    frame = pd.concat([_with_span(flights[flights.month == m], f"2013-{m:02d}") for m in (1, 2)])
    stats = validation.span_statistics(_by_span(frame))
    drift = validation.drift_between_spans(stats, _schema())
    html = validation.drift_html(drift, {})
    assert "<table>" in html and "temp" in html


def test_statistics_view_is_self_contained_and_marks_drift_and_anomalies(flights):
    import re

    from components.validate_data.statistics_view import statistics_view_html

    frame = pd.concat([_with_span(flights[flights.month == 1], "2013-01"),
                       _with_span(flights[flights.month == 7], "2013-07")])
    stats = validation.span_statistics(_by_span(frame))
    drift = validation.drift_between_spans(stats, validation.with_drift_thresholds(_schema(), 0.05, 0.05))
    anomalies = {"2013-07": [{"feature": "carrier", "short_description": "Unexpected string values",
                              "description": "", "kind": "ENUM_TYPE_UNEXPECTED_STRING_VALUES"}]}
    html = statistics_view_html(stats, anomalies, drift)
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=|url\(|@import""", html, re.IGNORECASE), "an external resource"
    features = {".".join(f.path.step) for f in stats["2013-01"].datasets[0].features}
    assert html.count("<svg") == 2 * len(features)  # every feature, both spans
    sections = {m.group(1): m.group(2) for m in re.finditer(r"<section class='feature' id='([^']+)'>(.*?)</section>",
                                                             html, re.DOTALL)}
    assert set(sections) == features
    assert "mark drift" in sections["temp"] and "JENSEN_SHANNON_DIVERGENCE" in sections["temp"]
    assert "mark anomaly" in sections["carrier"] and "Unexpected string values" in sections["carrier"]
    assert "mark anomaly" not in sections["temp"]


def _previous_and(flights, kind):
    """Real March, then April changed by ``kind`` (span checks compare with the span before)."""
    from span_tools import corrupt

    march = _with_span(flights[flights.month == 3], "2013-03")
    april = _with_span(corrupt(flights[flights.month == 4], kind), "2013-04")
    return {"2013-03": march, "2013-04": april}


def _all_anomalies(frames, feeds=None, spec=FLIGHTS):
    """Every check validate_data makes, with the spec's limits (span limits, fatal drift)."""
    stats = validation.span_statistics(frames)
    limits = validation.SpanLimits(**spec.checks.get("span", {}))
    return validation.span_anomalies(frames, stats, _schema(), spec, limits, feeds)


def _weather_feeds(kind=None):
    """The weather feed's rows of March and April (April changed by ``kind``), as extraction writes them."""
    from span_tools import corrupt

    from pipelines.examples.flights.land import load_weather

    weather = load_weather()
    april = weather[weather.month == 4]
    return {"weather": {"2013-03": weather[weather.month == 3], "2013-04": corrupt(april, kind) if kind else april}}


@pytest.mark.parametrize("kind", sorted(__import__("span_tools").CORRUPTIONS))
def test_every_corruption_in_the_catalogue_is_caught_and_named(flights, kind):
    from span_tools import CORRUPTIONS, WEATHER_FEED_CORRUPTIONS

    _, feature, anomaly, _ = CORRUPTIONS[kind]
    if kind in WEATHER_FEED_CORRUPTIONS:
        found = _all_anomalies(_previous_and(flights, "column_order"), _weather_feeds(kind))
    else:
        found = _all_anomalies(_previous_and(flights, kind), _weather_feeds())
    assert list(found) == ["2013-04"], found  # the clean span before it passes
    kinds = {}
    for entry in found["2013-04"]:
        kinds.setdefault(entry["feature"], set()).update(entry["kind"].split(","))
    assert anomaly in kinds.get(feature, set()), kinds
    assert feature in validation.describe_anomalies(found)


def test_the_twelve_months_of_2013_raise_no_anomaly_with_the_default_limits():
    """Calibration: every real month, all flights, each against the month before: zero false stops."""
    from pipelines.examples.flights.land import load_joined_flights, load_weather

    everything, weather = load_joined_flights(), load_weather()
    frames = {f"2013-{m:02d}": _with_span(everything[everything.month == m], f"2013-{m:02d}") for m in range(1, 13)}
    feeds = {"weather": {f"2013-{m:02d}": weather[weather.month == m] for m in range(1, 13)}}
    assert _all_anomalies(frames, feeds) == {}


def test_limits_are_honoured_on_both_sides(flights):
    frames = _previous_and(flights, "tiny_span")
    stats = validation.span_statistics(frames)
    assert validation.schema_anomalies(stats, _schema(), validation.SpanLimits(min_rows_fraction=0.01)) == {}
    shifted = _previous_and(flights, "delays_shifted")
    assert validation.history_anomalies(shifted, FLIGHTS, validation.SpanLimits(max_label_rate_change=0.9)) == {}
    assert validation.history_anomalies(shifted, FLIGHTS, validation.SpanLimits(max_label_rate_change=0.05))


def test_an_unreadable_span_file_or_schema_is_one_line_naming_it(tmp_path):
    (tmp_path / "2013-04.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(validation.UnreadableInputError) as error:
        validation.read_spans(str(tmp_path), ["2013-04"])
    message = str(error.value)
    assert message.startswith("span 2013-04: ") and "2013-04.parquet" in message and "\n" not in message
    bad_schema = tmp_path / "schema.pbtxt"
    bad_schema.write_text("feature { name: 'x' type: NOT_A_TYPE }")
    with pytest.raises(validation.UnreadableInputError, match=r"schema .*schema.pbtxt does not parse"):
        validation.load_or_infer_schema(str(bad_schema), None)


def test_the_corruption_tool_writes_the_span_file_the_source_reads():
    from span_tools import SPAN_FILE, WEATHER_FEATURES, WEATHER_FILE

    from pipelines.examples.flights import dataset

    assert (SPAN_FILE, WEATHER_FILE) == (dataset.SPAN_FILE, dataset.WEATHER_FILE)
    assert list(WEATHER_FEATURES) == dataset.WEATHER_FEATURES


def test_the_readme_table_lists_every_corruption_of_the_catalogue():
    import os

    from span_tools import CORRUPTIONS, FILE_CORRUPTIONS

    readme = open(os.path.join(REPO_ROOT, "README.md")).read()
    table = readme[readme.index("## What stops a run"):]
    assert all(f"| `{kind}` |" in table for kind in [*CORRUPTIONS, *FILE_CORRUPTIONS])


def test_the_serving_guard_reads_the_domains_tfdv_reads():
    """components/schema_domains.py (serving runtime, no TFDV) against TFDV on the same schema file."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components.schema_domains import read_domains

    schema = _schema()
    domains = read_domains(FLIGHTS.schema_path)
    string_domains = {d.name: set(d.value) for d in schema.string_domain}
    for feature in schema.feature:
        domain = domains.get(feature.name)
        kind = feature.WhichOneof("domain_info")
        if kind in ("int_domain", "float_domain"):
            expected = getattr(feature, kind)
            assert (domain.minimum, domain.maximum) == (expected.min, expected.max), feature.name
        elif kind == "domain":
            assert set(domain.values) == string_domains[feature.domain], feature.name
            closed = (not feature.HasField("distribution_constraints")
                      or feature.distribution_constraints.min_domain_mass >= 1.0)
            assert domain.closed == closed, feature.name
        else:
            assert domain is None, feature.name
    assert feature.type in (schema_pb2.INT, schema_pb2.FLOAT, schema_pb2.BYTES)
    assert domains["carrier"].closed and not domains["dest"].closed and domains["distance"].maximum == 6000


def test_every_value_check_a_spec_may_name_is_implemented():
    from components import dataset_spec

    assert set(validation.VALUE_CHECKS) == set(dataset_spec.VALUE_CHECKS)


def test_the_spec_s_schema_is_used_when_no_schema_file_is_given():
    schema, inferred = validation.load_or_infer_schema(None, None, FLIGHTS.schema_text)
    assert not inferred and {f.name for f in schema.feature} >= set(FLIGHTS.features)
    with pytest.raises(validation.UnreadableInputError, match="the dataset spec's schema does not parse"):
        validation.load_or_infer_schema(None, None, "feature { name: 'x' type: NOT_A_TYPE }")
    with pytest.raises(validation.UnreadableInputError, match="does not exist"):
        validation.load_or_infer_schema("/nonexistent/schema.pbtxt", None)


@pytest.mark.parametrize("kind", sorted(__import__("span_tools").BENIGN_REWRITES))
def test_good_data_in_another_valid_encoding_is_read_not_refused(flights, kind, tmp_path):
    """Written to Parquet and read back as validate_data reads it: no anomaly, the same values."""
    frames = _previous_and(flights, kind)
    for span, frame in frames.items():
        frame.to_parquet(tmp_path / f"{span}.parquet", index=False)
    read = validation.read_spans(str(tmp_path), list(frames))
    assert _all_anomalies(read) == {}
    original = flights[flights.month == 4]
    april = read["2013-04"]
    assert len(april) == len(original)
    assert sorted(april["carrier"]) == sorted(original["carrier"]) and april["carrier"].dtype == object
    assert np.allclose(np.sort(april["distance"].to_numpy(dtype=float)), np.sort(original["distance"].to_numpy()),
                       rtol=1e-6)


def test_a_column_of_a_type_no_step_reads_is_one_line_naming_it(tmp_path):
    import pandas as pd

    pd.DataFrame({"when": pd.to_timedelta([1, 2], unit="s")}).to_parquet(tmp_path / "2013-04.parquet")
    with pytest.raises(validation.UnreadableInputError) as error:
        validation.read_spans(str(tmp_path), ["2013-04"])
    message = str(error.value)
    assert message.startswith("span 2013-04: ") and "column 'when' has type timedelta64" in message
    assert "\n" not in message


def test_row_checks_name_the_check_the_count_and_example_keys(flights):
    from span_tools import corrupt

    march = _with_span(flights[flights.month == 3], "2013-03")
    april = _with_span(flights[flights.month == 4], "2013-04")
    found = dict(validation.row_anomalies({"2013-03": march, "2013-04": corrupt(april, "duplicated_rows")}, FLIGHTS))
    assert found["2013-04"]["kind"] == "DUPLICATE_KEY"
    assert f"{max(1, int(len(april) * 0.1))} rows repeat a key of this span" in found["2013-04"]["description"]
    assert "carrier=" in found["2013-04"]["description"] and "2013-03" not in found
    # March re-delivered in April's folder: outside April, and keys already seen in the window's March.
    redelivered = _with_span(pd.concat([april, march.head(20)]), "2013-04")
    anomalies = [a for span, a in validation.row_anomalies({"2013-03": march, "2013-04": redelivered}, FLIGHTS)]
    kinds = {a["kind"]: a["description"] for a in anomalies}
    assert "20 rows repeat a key of an earlier span of the window" in kinds["DUPLICATE_KEY"]
    assert kinds["EVENT_TIME_OUTSIDE_SPAN"].startswith("20 rows have an event time outside 2013-04")


def test_every_taxi_quarter_passes_its_spec_with_the_defaults(tmp_path_factory):
    """Calibration, as for the flights' months: the sixteen quarters of TFX's trips, each against the one before."""
    import subprocess
    import sys

    from components.sources import LocalSource, read_feed

    taxi = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/taxi/spec.toml")
    source = tmp_path_factory.mktemp("taxi") / "taxi"
    subprocess.run([sys.executable, "-m", "pipelines.examples.taxi.land", str(source)], check=True, cwd=REPO_ROOT,
                   capture_output=True)
    local, feed = LocalSource(str(source)), taxi.feeds[taxi.main_feed]
    frames = {span: read_feed(local.read_bytes(span, feed.file), feed).assign(span=span)
              for span in local.spans(feed.file, taxi.granularity)}
    assert len(frames) == 16
    schema, _ = validation.load_or_infer_schema(None, None, taxi.schema_text)
    limits = validation.SpanLimits(**taxi.checks["span"])
    assert taxi.checks["fatal_drift"]  # the fatal drift limits are checked too
    assert validation.span_anomalies(frames, validation.span_statistics(frames), schema, taxi, limits) == {}


def test_the_committed_fatal_drift_limits_are_what_calibration_gives_today():
    """``make drift-limits`` on the flights (all of 2013, all rows and 10% samples): each committed limit
    leaves the largest natural drift at half of it or less, and the features without one are those that
    drift by nature nearly as far as the measure goes."""
    from components.validate_data.drift_limits import fatal_limit, largest_drift
    from pipelines.examples.flights.land import load_joined_flights

    everything = load_joined_flights()
    frames = {f"2013-{m:02d}": everything[everything.month == m] for m in range(1, 13)}
    largest = largest_drift(frames, _schema(), FLIGHTS.features, samples=(0.1,))
    committed = FLIGHTS.checks["fatal_drift"]
    assert set(committed) == {name for name in FLIGHTS.features if fatal_limit(largest[name].value) is not None}
    for name, limit in committed.items():
        assert largest[name].value <= 0.55 * limit, (name, largest[name], limit)
        assert abs(fatal_limit(largest[name].value) - limit) <= 0.02, (name, largest[name], limit)


def test_a_unit_change_is_fatal_and_names_the_measure_the_value_and_the_span_before(flights):
    from span_tools import corrupt

    march = _with_span(flights[flights.month == 3], "2013-03")
    april = _with_span(corrupt(flights[flights.month == 4], "temperature_in_celsius"), "2013-04")
    stats = validation.span_statistics({"2013-03": march, "2013-04": april})
    found = validation.fatal_drift_anomalies(stats, _schema(), {"temp": 0.76, "distance": 0.1})
    assert list(found) == ["2013-04"] and [a["feature"] for a in found["2013-04"]] == ["temp"]
    assert found["2013-04"][0]["description"].startswith("Jensen-Shannon divergence 0.9")
    assert "against 2013-03, beyond the fatal limit 0.76" in found["2013-04"][0]["description"]
    assert validation.fatal_drift_anomalies(stats, _schema(), {"temp": 1.0}) == {}
    assert validation.fatal_drift_anomalies(stats, _schema(), {}) == {}


def test_a_feed_without_the_main_feed_s_identity_is_checked_by_its_own(flights):
    """The weather feed's rows: its own primary key and event time, named with the feed."""
    feeds = _weather_feeds()
    feeds["weather"]["2013-04"] = pd.concat([feeds["weather"]["2013-04"], feeds["weather"]["2013-03"].head(5)])
    found = validation.feed_row_anomalies(feeds, FLIGHTS)
    kinds = {a["kind"]: a for a in found["2013-04"]}
    assert kinds["DUPLICATE_KEY"]["feature"] == "(primary key of the weather feed)"
    assert "5 rows of the weather feed repeat a key of an earlier span" in kinds["DUPLICATE_KEY"]["description"]
    assert kinds["EVENT_TIME_OUTSIDE_SPAN"]["description"].startswith("5 rows of the weather feed have an event time")
    assert list(found) == ["2013-04"]
