"""components/feature_store/arrow_engine.py + batched_sqlite.py ``online_write_arrow``: materializing through
Arrow (Feast's conversion once per distinct value) leaves the online store as Feast's own engine and SQLite
store do, row for row and byte for byte, for every scalar type and the values that trip conversions."""

import os
import sqlite3
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from components.feature_store.arrow_engine import TYPE as ENGINE
from components.feature_store.batched_sqlite import TYPE as STORE

START = datetime(2024, 3, 1, tzinfo=UTC)
SPECIALS = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1e308, -1e-308, 5e-324, 0.1, 1.5]


def _readings(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def some(values, missing=0.1):
        picked = pd.Series(rng.choice(np.asarray(values, dtype=object), rows))
        return picked.where(rng.random(rows) >= missing, None)

    doubles = rng.choice(np.array(SPECIALS + list(np.round(rng.normal(10, 5, 40), 1))), rows)
    with np.errstate(over="ignore"):
        single = doubles.astype(np.float32)  # 1e308 overflows to inf
    frame = pd.DataFrame({
        "station": some(["JFK", "LGA", "EWR", "", "Zürich", "東京"], missing=0),
        "slot": rng.integers(-3, 40, rows).astype("int64"),
        "double": doubles,  # NaN and -0.0 among them
        "single": single,
        "count64": pd.array(rng.choice([0, -1, 2**62, -2**63, 7, 7, 7], rows), dtype="Int64"),
        "count32": rng.choice(np.array([0, -5, 2**31 - 1, 3], dtype=np.int32), rows),
        "flag": pd.array(some([True, False]), dtype="boolean"),
        "label": some(["a", "", "b", "long " * 20, "ü"]),
        "seen": pd.to_datetime(START) + pd.to_timedelta(rng.integers(0, 5, rows), unit="D"),
    })
    frame.loc[rng.random(rows) < 0.1, "seen"] = pd.NaT
    frame["count64"] = frame["count64"].where(rng.random(rows) >= 0.1)  # missing integers: a float column in Arrow
    # Several readings per key at different times (the latest wins) and the same time twice (created decides).
    frame["observed_at"] = START + pd.to_timedelta(rng.integers(0, 72, rows), unit="h")
    frame["created_at"] = START + pd.to_timedelta(rng.integers(0, 1000, rows), unit="s")
    return frame


#: (online store, batch engine): ours; Feast's; our engine with a store that takes no Arrow (Feast's node runs).
SETUPS = {"arrow": (STORE, ENGINE), "feast": ("sqlite", "local"), "fallback": ("sqlite", ENGINE)}


def _store(folder: str, data: str, setup: str, batch_size):
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.types import Bool, Float32, Float64, Int32, Int64, String, UnixTimestamp

    config = {"project": "t", "provider": "local", "registry": os.path.join(folder, "registry.db"),
              "online_store": {"type": SETUPS[setup][0], "path": os.path.join(folder, "online.db")},
              "offline_store": {"type": "file"}, "entity_key_serialization_version": 3,
              "batch_engine": {"type": SETUPS[setup][1]}, "materialization": {"online_write_batch_size": batch_size}}
    store = FeatureStore(config=RepoConfig(**config))
    entities = [Entity(name="station", join_keys=["station"], value_type=ValueType.STRING),
                Entity(name="slot", join_keys=["slot"], value_type=ValueType.INT64)]
    source = FileSource(path=data, timestamp_field="observed_at", created_timestamp_column="created_at")
    view = FeatureView(name="readings", entities=entities, ttl=timedelta(days=30), source=source, online=True,
                       schema=[Field(name="station", dtype=String), Field(name="slot", dtype=Int64),
                               Field(name="double", dtype=Float64), Field(name="single", dtype=Float32),
                               Field(name="count64", dtype=Int64), Field(name="count32", dtype=Int32),
                               Field(name="flag", dtype=Bool), Field(name="label", dtype=String),
                               Field(name="seen", dtype=UnixTimestamp)])
    store.apply([*entities, view])
    return store


def _rows(folder: str) -> list:
    with sqlite3.connect(os.path.join(folder, "online.db")) as db:
        return db.execute("SELECT entity_key, feature_name, value, value_text, event_ts, created_ts FROM t_readings "
                          "ORDER BY entity_key, feature_name").fetchall()


@pytest.mark.parametrize("batch_size", [None, 97])
def test_arrow_materialization_writes_the_rows_feast_s_engine_and_store_write(tmp_path, batch_size, capsys):
    data = str(tmp_path / "readings.parquet")
    _readings(3000, seed=11).to_parquet(data)
    folders = {setup: str(tmp_path / setup) for setup in SETUPS}
    for setup, folder in folders.items():
        os.makedirs(folder)
        store = _store(folder, data, setup, batch_size)
        assert type(store._get_provider().batch_engine).__name__ == ("LocalComputeEngine" if setup == "feast"
                                                                      else "ArrowLocalComputeEngine")
        store.materialize(START - timedelta(hours=1), START + timedelta(days=4))
    feast = _rows(folders["feast"])
    keys = {(row[0]) for row in feast}
    assert len(keys) > 200 and len(feast) == len(keys) * 7  # 7 features per key
    assert _rows(folders["arrow"]) == feast and _rows(folders["fallback"]) == feast
    assert "differ from Feast's serialize_entity_key" not in capsys.readouterr().out  # keys value by value
    # Every kind of value got through: NaN/None (empty), -0.0 apart from 0.0.
    values = {row[2] for row in feast}
    assert b"" in values and any(v.startswith(b"\x29\x00\x00\x00\x00\x00\x00\x00\x80") for v in values)
    # A second materialization of other readings (upserts onto the rows) leaves them equal too.
    _readings(3000, seed=12).to_parquet(data)
    for setup, folder in folders.items():
        _store(folder, data, setup, batch_size).materialize(START - timedelta(hours=1), START + timedelta(days=4))
    assert _rows(folders["arrow"]) == _rows(folders["feast"]) == _rows(folders["fallback"]) != feast


def test_distinct_values_are_told_apart_bit_for_bit():
    from components.feature_store.batched_sqlite import _distinct

    values = np.array([0.0, -0.0, np.nan, 0.0, 1.0, np.nan, -0.0])
    distinct, codes = _distinct(values)
    assert distinct.view(np.uint64).tolist() == np.array([0.0, -0.0, np.nan, 1.0]).view(np.uint64).tolist()
    assert codes.tolist() == [0, 1, 2, 0, 3, 2, 1]
    strings = np.array(["a", None, "a"], dtype=object)  # left whole: converted value by value
    assert _distinct(strings)[0] is strings and _distinct(strings)[1].tolist() == [0, 1, 2]


def test_keys_built_value_by_value_fall_back_to_feast_s_serialization_when_they_differ(tmp_path, monkeypatch, capsys):
    """A Feast whose key layout is not names' prefix + value parts: the sampled check notices, every key is Feast's."""
    import feast.infra.key_encoding_utils as encoding

    data = str(tmp_path / "readings.parquet")
    _readings(500, seed=5).to_parquet(data)
    folders = {setup: str(tmp_path / setup) for setup in ("arrow", "feast")}
    monkeypatch.setattr(encoding, "serialize_entity_key_prefix", lambda names, **_: b"another layout")
    for setup, folder in folders.items():
        os.makedirs(folder)
        _store(folder, data, setup, None).materialize(START - timedelta(hours=1), START + timedelta(days=4))
    assert "differ from Feast's serialize_entity_key" in capsys.readouterr().out
    assert _rows(folders["arrow"]) == _rows(folders["feast"])


def test_entity_keys_of_no_row_are_none():
    from components.feature_store.batched_sqlite import _entity_keys

    assert _entity_keys(["station", "slot"], [([], np.array([], dtype=np.int64))] * 2, 3) == []
