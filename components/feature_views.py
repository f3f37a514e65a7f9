"""A feature view's join keys, derived from a row's columns as the dataset spec declares them.

Each entity of a view (``[[feature_views.entities]]``) says how its key is formed on both sides:
from a row of the main feed (``row``) and from a row of the view's feed (``feed``). A
derivation is a column as it is (``{column = "origin"}``) or the local hour of date parts
(``{hour_of = {year = ..., month = ..., day = ..., hour = ... | hhmm = ...}}``, the key
``YYYY-MM-DDTHH``). Training (the point-in-time join), the offline and online stores, serving
and the monitor all form keys here, so they cannot disagree. Standard library only: the model
server and the monitor use it too.
"""

from __future__ import annotations

import calendar
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional


def key_text(value: Any) -> Optional[str]:
    """A key value as the stores hold it: strings as they are, whole numbers without a decimal point."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if hasattr(value, "item"):  # numpy scalars
        return key_text(value.item())
    return str(value)


def hour_key(year: Any, month: Any, day: Any, hour: Any) -> Optional[str]:
    """The key of a local hour, ``2013-05-17T17``; None when a part is missing or not a valid date and hour."""
    try:
        parts = [int(float(part)) for part in (year, month, day, hour)]
    except (TypeError, ValueError, OverflowError):
        return None
    if any(float(part) != number for part, number in zip((year, month, day, hour), parts)):
        return None
    year, month, day, hour = parts
    if not (1 <= year <= 9999 and 1 <= month <= 12 and 0 <= hour <= 23 and 1 <= day <= _days_in(year, month)):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}"


@functools.cache
def _days_in(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def derivation_columns(derivation: Mapping[str, Any]) -> list[str]:
    """The columns a key derivation reads."""
    if "column" in derivation:
        return [derivation["column"]]
    return list(derivation["hour_of"].values())


def derive_keys(columns: Mapping[str, Sequence], derivation: Mapping[str, Any], rows: int,
                defaults: Optional[Mapping[str, Any]] = None) -> list[Optional[str]]:
    """Each row's key for one entity (None where it cannot be formed).

    Args:
        columns: Column name -> one value per row (a list, a numpy array or a pandas Series).
        derivation: The entity's ``row`` or ``feed`` derivation from the spec.
        rows: The number of rows.
        defaults: Values of columns a caller does not send (e.g. the year of the training data).
    """
    defaults = defaults or {}

    def values(name: str) -> Sequence:
        if name in columns:
            column = columns[name]
            return column.tolist() if hasattr(column, "tolist") else list(column)
        if name in defaults:
            return [defaults[name]] * rows
        raise KeyError(name)

    if "column" in derivation:
        return [key_text(value) for value in values(derivation["column"])]
    parts = derivation["hour_of"]
    year = values(parts["year"]) if "year" in parts else [defaults.get("year")] * rows
    if "hour" in parts:
        hours = values(parts["hour"])
    else:
        hours = [_hour_of_hhmm(value) for value in values(parts["hhmm"])]
    return [hour_key(*row) for row in zip(year, values(parts["month"]), values(parts["day"]), hours)]


def _hour_of_hhmm(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number // 100


def hour_start(key: str):
    """The start of the hour a key names (``datetime``), for a reading stored without its own time."""
    import datetime

    return datetime.datetime.strptime(key, "%Y-%m-%dT%H")


def hour_entities(view) -> list[dict]:
    """The entities of a view keyed by a local hour (``hour_of``)."""
    return [entity for entity in view.entities if "hour_of" in entity["feed"]]


def plain_join(frame, readings, view):
    """The view's features joined to each row on its entities' keys, without a feature store (pandas).

    What Feast's point-in-time join gives when every key names one reading (a reading per hour):
    ``tests/unit/feature`` checks they agree bit for bit. Schema inference, drift calibration and
    the serving parity check join spans with it.
    """
    keys = [f"_key{number}" for number in range(len(view.entities))]

    def with_keys(rows, side):
        columns = {name: rows[name] for name in rows.columns}
        return rows.assign(**{key: derive_keys(columns, entity[side], len(rows))
                              for key, entity in zip(keys, view.entities)})

    readings = with_keys(readings, "feed").dropna(subset=keys).drop_duplicates(subset=keys)[keys + list(view.features)]
    joined = with_keys(frame.reset_index(drop=True), "row").merge(readings, on=keys, how="left")
    return joined.drop(columns=keys)
