"""Features the caller does not send: the weather, looked up in the feature store by the flight.

A model whose ``model.json`` has a ``lookup`` block (written by train) takes requests with or
without the looked-up features. A request that carries none of them gets them from Feast's
feature server, keyed by the flight's origin and scheduled local hour (year: the model's data
year, ``lookup.year``); a request that carries them all is served as sent. The lookup sits in
the server, not in a KServe transformer: the column checks, the skew guard and the model run on
one set of columns in one process, with no extra network hop per request.
"""

from __future__ import annotations

from typing import Any, Optional

import kserve
import numpy as np
from kserve.errors import InvalidInput, ServerNotReady

from components.feature_lookup import KEY_FEATURES, FeatureLookup, FeatureServerError, flight_hour
from components.model_server.inputs import Columns


def looked_up_features(info: dict[str, Any]) -> list[str]:
    """The features the model's feature store supplies (none for a model without a ``lookup`` block)."""
    return list((info.get("lookup") or {}).get("features") or [])


def sent_features(payload: Any, features: list[str], looked_up: list[str]) -> list[str]:
    """The features a request carries: every one, or (when it names none of the looked-up ones) the rest.

    Judged on the first V1 instance (the others must agree, or the column checks refuse them) or
    on the V2 input names.
    """
    if not looked_up:
        return features
    flight_only = [f for f in features if f not in looked_up]
    if isinstance(payload, kserve.InferRequest):
        names = {tensor.name for tensor in payload.inputs or []}
        return flight_only if names and not names & set(looked_up) else features
    instances = payload.get("instances") if isinstance(payload, dict) else None
    first = instances[0] if isinstance(instances, list) and instances else None
    if isinstance(first, dict):
        return flight_only if not first.keys() & set(looked_up) else features
    if isinstance(first, list) and len(first) == len(flight_only):
        return flight_only
    return features


def add_looked_up(columns: Columns, info: dict[str, Any], lookup: Optional[FeatureLookup]) -> None:
    """Fills the looked-up features into checked flight columns, from the feature store.

    Raises:
        InvalidInput: (400) A key feature is missing, or the store holds no weather for a flight's
            origin and hour; or this server has no feature store.
        ServerNotReady: (503) The feature server cannot be reached.
    """
    looked_up = looked_up_features(info)
    if lookup is None:
        raise InvalidInput(f"missing feature(s) {', '.join(looked_up)}: this server has no feature store "
                           "to look them up (--feature-server-url); send them with each instance")
    year = int(info["lookup"]["year"])
    origins = columns.values["origin"]
    for name in KEY_FEATURES:
        column = columns.values[name]
        missing = [i for i, v in enumerate(column) if v is None] if name == "origin" else \
            np.flatnonzero(np.isnan(column)).tolist()
        if missing:
            raise InvalidInput(f"instance {missing[0]}: feature {name!r} is null; the weather is looked up by "
                               f"{', '.join(KEY_FEATURES)}")
    hours = list(map(flight_hour, [year] * columns.rows, columns.values["month"], columns.values["day"],
                     columns.values["sched_dep_time"]))
    try:
        values, found = lookup.lookup(list(origins), hours)
    except FeatureServerError as error:
        raise ServerNotReady(f"the weather features cannot be looked up: {error}") from None
    if not all(found):
        row = found.index(False)
        raise InvalidInput(f"instance {row}: the feature store holds no weather for origin {origins[row]!r} at "
                           f"{hours[row]} (local hour of sched_dep_time, year {year}); send "
                           f"{', '.join(looked_up)} with the instance, or materialize that hour")
    for name in looked_up:
        columns.values[name] = np.array(values[name], dtype=np.float64)  # null (no reading) -> NaN, as trained
