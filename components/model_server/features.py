"""Features the caller does not send: a feature view's, looked up in the feature store by the row.

A model whose ``model.json`` has a ``lookup`` block (written by train) takes requests with or
without the looked-up features. A request that carries none of them gets them from Feast's
feature server, keyed as the dataset spec derives each entity from a row (a key column the
caller does not send takes its ``defaults`` value, e.g. the year of a date); a request that
carries them all is served as sent. The lookup sits in the server, not in a KServe transformer:
the column checks, the skew guard and the model run on one set of columns in one process, with
no extra network hop per request.
"""

from __future__ import annotations

from typing import Any, Optional

import kserve
import numpy as np
from kserve.errors import InvalidInput, ServerNotReady

from components.feature_lookup import FeatureLookup, FeatureServerError, key_columns, look_up_rows
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
    sent_only = [f for f in features if f not in looked_up]
    if isinstance(payload, kserve.InferRequest):
        names = {tensor.name for tensor in payload.inputs or []}
        return sent_only if names and not names & set(looked_up) else features
    instances = payload.get("instances") if isinstance(payload, dict) else None
    first = instances[0] if isinstance(instances, list) and instances else None
    if isinstance(first, dict):
        return sent_only if not first.keys() & set(looked_up) else features
    if isinstance(first, list) and len(first) == len(sent_only):
        return sent_only
    return features


def add_looked_up(columns: Columns, info: dict[str, Any], lookup: Optional[FeatureLookup]) -> None:
    """Fills the looked-up features into checked columns, from the feature store.

    Raises:
        InvalidInput: (400) A key column is missing, or the store holds nothing for a row's keys;
            or this server has no feature store.
        ServerNotReady: (503) The feature server cannot be reached.
    """
    looked_up = looked_up_features(info)
    if lookup is None:
        raise InvalidInput(f"missing feature(s) {', '.join(looked_up)}: this server has no feature store "
                           "to look them up (--feature-server-url); send them with each instance")
    block = info["lookup"]
    keys = key_columns(block)
    for name in keys:
        column = columns.values[name]
        missing = [i for i, v in enumerate(column) if v is None or v != v]
        if missing:
            raise InvalidInput(f"instance {missing[0]}: feature {name!r} is null; the looked-up features are found "
                               f"by {', '.join(keys)}")
    try:
        values, found, describe = look_up_rows(lookup, block, columns.values, columns.rows)
    except FeatureServerError as error:
        raise ServerNotReady(f"the features of {', '.join(v['name'] for v in block['views'])} cannot be looked up: "
                             f"{error}") from None
    if not all(found):
        row = found.index(False)
        defaults = ", ".join(f"{k} {v}" for k, v in (block.get("defaults") or {}).items())
        raise InvalidInput(f"instance {row}: the feature store holds nothing for {describe(row)}"
                           f"{f' ({defaults} from the model)' if defaults else ''}; send "
                           f"{', '.join(looked_up)} with the instance, or materialize those keys")
    categorical = set(info.get("categorical_features") or [])
    for name in looked_up:
        # null (no reading) -> NaN, as trained; a looked-up category stays a string (None when missing)
        columns.values[name] = values[name] if name in categorical else np.array(
            [np.nan if v is None else v for v in values[name]], dtype=np.float64)
