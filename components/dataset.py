"""What the flights data looks like: columns, types, label and model features.

Standard library only: the data runtime (landing, extraction) and the training
runtime (prepare, train, evaluate) both read it, so they cannot disagree.
"""

from __future__ import annotations

import os

#: The curated schema kept in git (components/validate_data/curate_schema.py writes it): one
#: definition of the data's constraints for validation, monitoring and the serving boundary.
CURATED_SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "validate_data", "schema",
                              "flights.pbtxt")

#: Column name -> pandas dtype of a landed span. Fixed, so that a month without
#: missing values does not turn a float column into an integer one.
COLUMNS = {
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
    "temp": "float64",
    "dewp": "float64",
    "humid": "float64",
    "wind_dir": "float64",
    "wind_speed": "float64",
    "precip": "float64",
    "pressure": "float64",
    "visib": "float64",
}

#: Column added by extraction: the span (month, ``YYYY-MM``) a row came from.
SPAN_COLUMN = "span"

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
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
]
FEATURES = CATEGORICAL_FEATURES + NUMERIC_FEATURES

#: Columns whose hash decides the train/eval split of a row (stable across runs).
SPLIT_KEY = ["year", "month", "day", "carrier", "flight", "sched_dep_time", "origin"]


def span_file(span: str) -> str:
    """File name of one span inside an extracted dataset folder.

    Spans are kept apart so that a span whose column types changed reaches
    validation as it is.
    """
    return f"{span}.parquet"
