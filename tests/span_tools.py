"""Changes span files of a test source the way real feeds go wrong (run with the data runtime).

Usage: ``python tests/span_tools.py SOURCE SPAN KIND`` where KIND is a key of ``CORRUPTIONS``,
``FILE_CORRUPTIONS`` or ``BENIGN_REWRITES`` (good data in another encoding, which must pass), or
drop_last_row / shuffle_labels (valid data, a worse model).
``CORRUPTIONS`` is the catalogue of bad data the tests feed the pipeline: per kind, what is
done to the span's rows, the feature named and the check that must stop the run (README
"What stops a run").
"""

import os
import sys

# pandas is imported where rows are changed: the catalogue itself is read by the dev runtime too.
SPAN_FILE = "flights.parquet"  # pipelines/examples/flights/dataset.py's (a test checks they agree)
#: The weather feed's file beside it and its features (pipelines/examples/flights/dataset.py):
#: a corruption of a weather feature is made to the weather feed, which reaches validation through
#: the feature store's join.
WEATHER_FILE = "weather.parquet"
WEATHER_FEATURES = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib")


def _scaled(column, factor):
    return lambda f: f.assign(**{column: f[column] * factor})


def _set(column, value):
    return lambda f: f.assign(**{column: value})


def _tripled(frame):
    import pandas as pd

    return pd.concat([frame, frame, frame], ignore_index=True)


def _head(frame, share):
    return frame.iloc[: max(1, int(len(frame) * share))]


def _previous_span_rows(frame, share=0.05):
    """A slice of the previous month re-delivered in this span (its rows keep their own dates)."""
    import pandas as pd

    moved = frame.head(max(1, int(len(frame) * share))).assign(month=lambda f: f["month"] - 1)
    return pd.concat([frame, moved], ignore_index=True)


def _duplicated_rows(frame, share=0.1):
    """A tenth of the rows delivered twice: the row count stays inside its limits."""
    import pandas as pd

    return pd.concat([frame, frame.head(max(1, int(len(frame) * share)))], ignore_index=True)


def _a_day_late(frame):
    """Every reading keyed a day after it was taken (the last day's readings land in the next span)."""
    import pandas as pd

    when = pd.to_datetime(frame[["year", "month", "day"]]) + pd.Timedelta(days=1)
    return frame.assign(year=when.dt.year.astype("int64"), month=when.dt.month.astype("int64"),
                        day=when.dt.day.astype("int64"))


def _some(column, value, share=0.05):
    def change(frame):
        frame = frame.copy()
        rows = frame.index[: max(1, int(len(frame) * share))]
        frame.loc[rows, column] = value
        return frame
    return change


#: kind -> (change, feature named, anomaly kind that stops the run, what it stands for).
CORRUPTIONS = {
    "missing_column": (lambda f: f.drop(columns=["carrier"]), "carrier", "SCHEMA_MISSING_COLUMN",
                       "a column dropped by the feed"),
    "unexpected_column": (_set("seat_pitch", 31.0), "seat_pitch", "SCHEMA_NEW_COLUMN", "a new column"),
    "changed_type": (lambda f: f.assign(distance=f["distance"].astype(str)), "distance", "UNEXPECTED_DATA_TYPE",
                     "numbers arriving as text"),
    "out_of_domain": (_some("carrier", "ZZ", 0.002), "carrier", "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
                      "an unknown airline code"),
    "empty_span": (lambda f: f.iloc[:0], "(dataset)", "DATASET_LOW_NUM_EXAMPLES", "a span without rows"),
    "distance_in_feet": (_scaled("distance", 5280), "distance", "FLOAT_TYPE_BIG_FLOAT",
                         "distance in feet instead of miles"),
    "negative_air_time": (_scaled("air_time", -1), "air_time", "FLOAT_TYPE_SMALL_FLOAT", "a sign flipped"),
    "temperature_in_kelvin": (lambda f: f.assign(temp=f["temp"] + 459.67), "temp", "FLOAT_TYPE_BIG_FLOAT",
                              "temperature in Rankine/Kelvin-like units"),
    "humidity_per_mille": (_scaled("humid", 10), "humid", "FLOAT_TYPE_BIG_FLOAT", "humidity on another scale"),
    "pressure_in_inhg": (_scaled("pressure", 0.02953), "pressure", "FLOAT_TYPE_SMALL_FLOAT",
                         "pressure in inches of mercury instead of millibars"),
    "visibility_in_meters": (_scaled("visib", 1609.34), "visib", "FLOAT_TYPE_BIG_FLOAT",
                             "visibility in meters instead of miles"),
    "wind_in_knots_x10": (_scaled("wind_speed", 100), "wind_speed", "FLOAT_TYPE_BIG_FLOAT",
                          "wind on a wrong scale"),
    "hour_25": (_some("hour", 25), "hour", "INT_TYPE_BIG_INT", "an impossible hour"),
    "month_13": (_set("month", 13), "month", "INT_TYPE_BIG_INT", "an impossible month"),
    "year_1970": (_set("year", 1970), "year", "INT_TYPE_SMALL_INT", "epoch-zero dates"),
    "clock_minutes_over_59": (lambda f: f.assign(dep_time=(f["dep_time"] // 100) * 100 + 75), "dep_time",
                              "CLOCK_TIME_MINUTES_OUT_OF_RANGE", "clock times in decimal hours"),
    "unknown_origin": (_some("origin", "BOS"), "origin", "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
                       "a flight from outside New York"),
    "unknown_destinations": (_some("dest", "XXX", 0.05), "dest", "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
                             "5% of destinations unknown"),
    "tiny_span": (lambda f: _head(f, 0.03), "(dataset)", "COMPARATOR_LOW_NUM_EXAMPLES",
                  "a partial delivery: 3% of the usual rows"),
    "duplicated_span": (_tripled, "(dataset)",
                        "COMPARATOR_HIGH_NUM_EXAMPLES", "the same rows delivered three times"),
    "delays_shifted": (lambda f: f.assign(arr_delay=f["arr_delay"] + 60), "arr_delay", "LABEL_RATE_CHANGE",
                       "arrival delays an hour off: the label rate jumps"),
    "weather_missing": (_set("temp", float("nan")), "temp", "MISSING_RATE_CHANGE", "the weather feed lost a feature"),
    "rows_of_previous_span": (_previous_span_rows, "(event time)", "EVENT_TIME_OUTSIDE_SPAN",
                              "a re-delivered slice of the previous month in this month's folder"),
    "duplicated_rows": (_duplicated_rows, "(primary key)", "DUPLICATE_KEY",
                        "a tenth of the rows twice, the row count inside its limits"),
    "temperature_in_celsius": (lambda f: f.assign(temp=(f["temp"] - 32) * 5 / 9), "temp", "FATAL_DRIFT",
                               "temperature in Celsius instead of Fahrenheit, inside its domain"),
    "wind_in_meters_per_second": (_scaled("wind_speed", 0.44704), "wind_speed", "FATAL_DRIFT",
                                  "wind speed in m/s instead of mph, inside its domain"),
    "humidity_as_a_fraction": (_scaled("humid", 0.01), "humid", "FATAL_DRIFT",
                               "relative humidity as a fraction instead of percent, inside its domain"),
    "weather_keyed_a_day_late": (_a_day_late, "(event time of the weather feed)", "EVENT_TIME_OUTSIDE_SPAN",
                                 "a weather feed whose readings are keyed a day late"),
}
#: Corruptions made to the weather feed (besides those of a weather feature): checked on the feed's own rows.
WEATHER_FEED_CORRUPTIONS = {"weather_keyed_a_day_late"}


def changes_weather_feed(kind: str) -> bool:
    """Whether a corruption is made to the weather feed (which reaches validation through the feature store)."""
    return kind in WEATHER_FEED_CORRUPTIONS or (kind in CORRUPTIONS and CORRUPTIONS[kind][1] in WEATHER_FEATURES)

def _dictionary_encoded(frame):
    return frame.assign(**{c: frame[c].astype("category") for c in frame.columns if frame[c].dtype == object})


def _narrower_numbers(frame):
    narrowed = {c: frame[c].astype("float32") for c in frame.columns if frame[c].dtype == "float64"}
    narrowed.update({c: frame[c].astype("int32") for c in frame.columns if frame[c].dtype == "int64"})
    return frame.assign(**narrowed)


#: Good data in another valid encoding: kind -> (rewrite, what it stands for). Each must pass
#: validation and train (README "What stops a run").
BENIGN_REWRITES = {
    "column_order": (lambda f: f[list(reversed(f.columns))], "the columns in another order"),
    "row_order": (lambda f: f.sample(frac=1.0, random_state=7), "the rows in another order"),
    "narrower_numbers": (_narrower_numbers, "float32 and int32 columns, as many writers produce"),
    "dictionary_encoded": (_dictionary_encoded, "dictionary-encoded strings (pandas' category dtype)"),
}

#: kind -> (what is written instead of the Parquet file, words of the error, what it stands for).
FILE_CORRUPTIONS = {
    "truncated_file": (lambda data: data[: len(data) // 2], "not a readable Parquet file", "a cut-off upload"),
    "not_parquet": (lambda data: b"year,month,day\n2013,4,1\n", "not a readable Parquet file",
                    "CSV where Parquet was expected"),
}


def corrupt(frame, kind: str):
    """Returns the span's rows changed according to ``kind``."""
    frame = frame.copy()
    if kind in CORRUPTIONS:
        return CORRUPTIONS[kind][0](frame)
    if kind in BENIGN_REWRITES:
        return BENIGN_REWRITES[kind][0](frame)
    if kind == "drop_last_row":
        return frame.iloc[:-1]
    if kind == "shuffle_labels":
        import numpy as np

        frame["arr_delay"] = np.random.default_rng(0).permutation(frame["arr_delay"].to_numpy())
        return frame
    raise ValueError(f"unknown kind {kind}")


def main() -> int:
    """Rewrites one span file in place (the weather feed's for a weather feature)."""
    source, span, kind = sys.argv[1:4]
    path = os.path.join(source, span, WEATHER_FILE if changes_weather_feed(kind) else SPAN_FILE)
    if kind in FILE_CORRUPTIONS:
        with open(path, "rb") as handle:
            data = handle.read()
        with open(path, "wb") as handle:
            handle.write(FILE_CORRUPTIONS[kind][0](data))
        return 0
    import pandas as pd

    corrupt(pd.read_parquet(path), kind).to_parquet(path, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
