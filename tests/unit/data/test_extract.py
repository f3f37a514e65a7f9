import pandas as pd
import pytest

from components.dataset_spec import DatasetSpec
from components.extract.extract import extract_spans
from components.kfp_io import ComponentError
from components.paths import REPO_ROOT
from components.sources import LocalSource
from components.spans import parse_spans
from pipelines.examples.flights import dataset
from pipelines.examples.flights.dataset import SPAN_FILE, WEATHER_FILE
from pipelines.examples.flights.land import land_spans, load_flights, load_joined_flights, load_weather

FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")


def test_parse_spans_accepts_ranges_and_lists():
    assert parse_spans("2013-11:2014-02") == ["2013-11", "2013-12", "2014-01", "2014-02"]
    assert parse_spans("2013-03, 2013-01") == ["2013-01", "2013-03"]


@pytest.mark.parametrize("text", ["2013-1", "2013-04:2013-01", "", "march"])
def test_parse_spans_rejects_bad_input(text):
    with pytest.raises(ComponentError):
        parse_spans(text)


def test_landing_keeps_fixed_dtypes_and_all_rows(tmp_path):
    rows = land_spans(str(tmp_path), months=[1, 2], fraction=0.02)
    assert set(rows) == {"2013-01", "2013-02"}
    frame = pd.read_parquet(tmp_path / "2013-01" / SPAN_FILE)
    assert list(frame.columns) == list(dataset.FLIGHT_COLUMNS)  # no weather: the feature store has it
    assert {c: str(t) for c, t in frame.dtypes.items()} == dataset.FLIGHT_COLUMNS
    assert (frame["month"] == 1).all() and len(frame) == rows["2013-01"]
    weather = pd.read_parquet(tmp_path / "2013-01" / WEATHER_FILE)
    assert {c: str(t) for c, t in weather.dtypes.items()} == dataset.WEATHER_COLUMNS
    assert (weather["month"] == 1).all()
    assert len(weather) == int((load_weather()["month"] == 1).sum())  # every reading, whatever the fraction
    assert LocalSource(str(tmp_path)).spans(SPAN_FILE) == ["2013-01", "2013-02"]


def test_full_year_has_all_flights_and_one_reading_per_origin_and_hour():
    assert len(load_flights()) == 336_776
    weather = load_weather()
    assert not weather.duplicated(["origin", "year", "month", "day", "hour"]).any()
    joined = load_joined_flights()
    assert len(joined) == 336_776 and list(joined.columns) == list(dataset.COLUMNS)
    assert joined["temp"].notna().mean() > 0.95  # weather joined on origin and hour


def test_extract_writes_spans_with_counts_and_hash(source, tmp_path):
    out = tmp_path / "dataset"
    meta = extract_spans(str(source), ["2013-01", "2013-02"], str(out), FLIGHTS)
    frames = {span: pd.read_parquet(out / dataset.span_file(span)) for span in meta["spans"]}
    assert meta["rows"] == sum(len(f) for f in frames.values()) == sum(meta["rows_per_span"].values())
    assert all((f[dataset.SPAN_COLUMN] == span).all() for span, f in frames.items())
    assert len(meta["data_hash"]) == 64


def test_extract_writes_the_other_feeds_of_each_span_for_validation(tmp_path):
    """The weather feed's rows of the window's spans beside the flights, as read (validation checks their rows)."""
    from components.spans import feed_span_file

    land_spans(str(tmp_path / "source"), months=[1, 2], fraction=0.02)
    (tmp_path / "source" / "2013-02" / WEATHER_FILE).unlink()  # a span without the feed: nothing to check
    extract_spans(str(tmp_path / "source"), ["2013-01", "2013-02"], str(tmp_path / "out"), FLIGHTS)
    weather = pd.read_parquet(tmp_path / "out" / feed_span_file("weather", "2013-01"))
    assert weather.equals(pd.read_parquet(tmp_path / "source" / "2013-01" / WEATHER_FILE))
    assert not (tmp_path / "out" / feed_span_file("weather", "2013-02")).exists()


def test_data_hash_changes_when_a_span_changes(source, tmp_path):
    first = extract_spans(str(source), ["2013-01"], str(tmp_path / "a"), FLIGHTS)["data_hash"]
    span_file = source / "2013-01" / SPAN_FILE
    frame = pd.read_parquet(span_file)
    frame.iloc[:-1].to_parquet(span_file, index=False)
    assert extract_spans(str(source), ["2013-01"], str(tmp_path / "b"), FLIGHTS)["data_hash"] != first


def test_missing_span_is_named(source, tmp_path):
    with pytest.raises(ComponentError, match="2013-09.*not found.*2013-01"):
        extract_spans(str(source), ["2013-01", "2013-09"], str(tmp_path / "x"), FLIGHTS)


def test_window_data_version_tracks_span_content(source):
    from components.fingerprint.fingerprint import window_data_version

    first = window_data_version(str(source), "2013-01:2013-02", "2013-03", FLIGHTS)
    assert first.startswith("2013-01,2013-02,2013-03@sha256:")
    assert window_data_version(str(source), "2013-01:2013-02", "2013-03", FLIGHTS) == first
    span_file = source / "2013-02" / SPAN_FILE
    pd.read_parquet(span_file).iloc[1:].to_parquet(span_file, index=False)
    assert window_data_version(str(source), "2013-01:2013-02", "2013-03", FLIGHTS) != first
    with pytest.raises(ComponentError, match="2013-09"):
        window_data_version(str(source), "2013-01", "2013-09", FLIGHTS)


def test_an_unreadable_source_or_span_file_is_one_line_naming_it(tmp_path, monkeypatch):
    import os

    from components.extract.extract import extract_spans

    (tmp_path / "src" / "2013-04").mkdir(parents=True)
    (tmp_path / "src" / "2013-04" / "flights.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(ComponentError) as error:
        extract_spans(str(tmp_path / "src"), ["2013-04"], str(tmp_path / "out"), FLIGHTS)
    message = str(error.value)
    assert message.startswith("span 2013-04: ") and "flights.parquet: not a readable Parquet file" in message
    assert "\n" not in message

    def refused(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "listdir", refused)
    with pytest.raises(ComponentError, match=r"src: its spans cannot be listed: PermissionError"):
        extract_spans(str(tmp_path / "src"), ["2013-04"], str(tmp_path / "out"), FLIGHTS)
