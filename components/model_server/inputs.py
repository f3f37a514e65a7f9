"""Request decoding and checks of the model server: V1 instances or V2 tensors into checked columns.

The hot path works per column: one ``zip``/``itemgetter`` transposes the rows, a set of the
value types checks a whole column at once and numpy converts it, so a request of N rows
costs a few C-level passes rather than N x features Python calls. Only when a column is
refused does the row-by-row checker run, to name the first bad instance exactly.

Every refusal is ``kserve.errors.InvalidInput`` (HTTP 400) naming the instance, the feature
and the problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
from kserve.errors import InvalidInput

from components.schema_domains import Domain

NUMERIC_DATATYPES = {"FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT8", "UINT16", "UINT32",
                     "UINT64"}
_NUMBER_TYPES = {int, float, type(None)}
_STRING_TYPES = {str, type(None)}


@dataclass
class Columns:
    """Checked request values: per feature a float64 array (numeric, NaN = missing) or a list of str/None."""

    values: dict[str, Any]
    rows: int


def _check_value(name: str, value: Any, categorical: bool, row: int) -> Any:
    if value is None:
        return None
    if categorical:
        if not isinstance(value, str):
            raise InvalidInput(f"instance {row}: feature {name!r} must be a string or null, "
                               f"got {type(value).__name__}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"instance {row}: feature {name!r} must be a number or null, got {type(value).__name__}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer literal beyond float range
        finite = False
    if not finite:
        raise InvalidInput(f"instance {row}: feature {name!r} must be finite, got {value}")
    return float(value)


def _column(name: str, values: list, categorical: bool) -> Any:
    """One feature's values as checked column, or None when some value is refused (the caller names it)."""
    types = set(map(type, values))
    if categorical:
        return values if types <= _STRING_TYPES else None
    if not types <= _NUMBER_TYPES:
        return None
    try:
        column = np.array(values, dtype=np.float64)  # None becomes NaN
    except OverflowError:
        return None
    if np.isinf(column).any():
        return None
    if float in types and np.count_nonzero(np.isnan(column)) != values.count(None):
        return None  # a NaN sent as a value: only null means missing
    return column


def _refuse_first(named_rows: list[dict[str, Any]], features: list[str], categorical: list[str]) -> None:
    """Runs the row-by-row checks to name the first refused value (raises InvalidInput)."""
    categorical_set = set(categorical)
    for index, values in enumerate(named_rows):
        for name in features:
            _check_value(name, values[name], name in categorical_set, index)
    raise InvalidInput("a value of the request was refused")  # the row checks find it; kept as a backstop


def _numeric_block(lists: list[list]) -> Any:
    """Every numeric column at once, as rows of one float64 array; None when some value is refused.

    The same checks as ``_column``, one pass over the whole block instead of one per feature.
    """
    if not _NUMBER_TYPES.issuperset(map(type, chain.from_iterable(lists))):
        return None
    try:
        block = np.array(lists, dtype=np.float64)  # None becomes NaN
    except (OverflowError, ValueError):
        return None
    missing = np.isnan(block)
    if np.isinf(block).any() or np.count_nonzero(missing) != sum(values.count(None) for values in lists):
        return None  # a NaN sent as a value: only null means missing
    return block


def _checked_columns(raw: dict[str, list], rows: int, features: list[str], categorical: list[str]) -> Columns:
    categorical_set = set(categorical)
    numeric = [name for name in features if name not in categorical_set]
    block = _numeric_block([raw[name] for name in numeric]) if len(numeric) > 1 else None
    checked = dict(zip(numeric, block)) if block is not None else {}
    columns = {}
    for name in features:
        if name in checked:
            columns[name] = checked[name]
            continue
        column = _column(name, raw[name], name in categorical_set)
        if column is None:
            _refuse_first([{f: raw[f][i] for f in features} for i in range(rows)], features, categorical)
        columns[name] = column
    return Columns(columns, rows)


def instances_to_columns(instances: Any, features: list[str], categorical: list[str]) -> Columns:
    """Checks V1 instances (objects of named features, or lists in ``features`` order) into columns.

    Raises:
        InvalidInput: Instances are missing or empty, a row has unknown or
            missing features, a wrong number of values, a wrong type or a
            non-finite number.
    """
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("'instances' must be a non-empty list")
    feature_set = set(features)
    in_order = itemgetter(*features) if len(features) > 1 else (lambda instance: (instance[features[0]],))
    if all(type(i) is dict and i.keys() == feature_set for i in instances):
        ordered = map(in_order, instances)
    elif all(type(i) is list and len(i) == len(features) for i in instances):
        ordered = instances
    else:
        _check_shapes(instances, features)
        ordered = [in_order(i) if isinstance(i, dict) else i for i in instances]
    transposed = zip(*ordered)
    raw = {name: list(values) for name, values in zip(features, transposed)}
    return _checked_columns(raw, len(instances), features, categorical)


def _check_shapes(instances: list, features: list[str]) -> None:
    """Refuses the first instance that is neither an object of the features nor a list of their values."""
    for index, instance in enumerate(instances):
        if isinstance(instance, dict):
            unknown = sorted(set(instance) - set(features))
            missing = [f for f in features if f not in instance]
            if unknown:
                raise InvalidInput(f"instance {index}: unknown feature(s) {', '.join(unknown)}; "
                                   f"expected {', '.join(features)}")
            if missing:
                raise InvalidInput(f"instance {index}: missing feature(s) {', '.join(missing)}")
        elif isinstance(instance, list):
            if len(instance) != len(features):
                raise InvalidInput(f"instance {index}: expected {len(features)} values "
                                   f"({', '.join(features)}), got {len(instance)}")
        else:
            raise InvalidInput(f"instance {index}: must be an object of named features or a list of values")


def tensors_to_columns(inputs: list, features: list[str], categorical: list[str]) -> Columns:
    """Checks V2 input tensors (one per feature, shape ``[N]`` or ``[N, 1]``) into columns.

    Raises:
        InvalidInput: Unknown or missing tensors, a shape other than ``[N]`` or
            ``[N, 1]``, different N across tensors, a datatype that does not fit
            the feature, a wrong number of values, or a bad value.
    """
    if not inputs:
        raise InvalidInput("the request has no inputs; send one tensor per feature")
    by_name = {}
    for tensor in inputs:
        if tensor.name in by_name:
            raise InvalidInput(f"input {tensor.name!r} is given twice")
        by_name[tensor.name] = tensor
    unknown = sorted(set(by_name) - set(features))
    missing = [f for f in features if f not in by_name]
    if unknown:
        raise InvalidInput(f"unknown input(s) {', '.join(unknown)}; expected one per feature: {', '.join(features)}")
    if missing:
        raise InvalidInput(f"missing input(s) {', '.join(missing)}")
    rows_count = None
    raw = {}
    for name in features:
        tensor = by_name[name]
        shape = list(tensor.shape)
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
            raise InvalidInput(f"input {name!r} has shape {shape}; expected [N] or [N, 1] with N >= 1")
        if rows_count is None:
            rows_count = shape[0]
        elif shape[0] != rows_count:
            raise InvalidInput(f"input {name!r} has {shape[0]} rows, other inputs have {rows_count}")
        expected = "BYTES" if name in categorical else "a numeric datatype (FP64, FP32, INT64, ...)"
        if (name in categorical) != (tensor.datatype == "BYTES") or (
                name not in categorical and tensor.datatype not in NUMERIC_DATATYPES):
            raise InvalidInput(f"input {name!r} has datatype {tensor.datatype}; expected {expected}")
        data = tensor.data
        data = data.tolist() if hasattr(data, "tolist") else list(data)
        if data and type(data[0]) is list:  # [N, 1] sent nested
            data = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in data]
        if len(data) != rows_count:
            raise InvalidInput(f"input {name!r} holds {len(data)} values for shape {shape}")
        if name in categorical and bytes in set(map(type, data)):
            data = [v.decode() if isinstance(v, bytes) else v for v in data]
        raw[name] = data
    return _checked_columns(raw, rows_count, features, categorical)


def check_domains(columns: Columns, domains: dict[str, Domain]) -> None:
    """The skew guard: refuses a value outside the curated schema's domain.

    The domains are read from the same schema file that data validation uses
    (``components/schema_domains.py``), so serving takes nothing that validation would stop.

    Raises:
        InvalidInput: Naming the first such instance (by row, then feature order), the feature,
            the value and the domain.
    """
    first = None
    for position, (name, column) in enumerate(columns.values.items()):
        domain = domains.get(name)
        if domain is None:
            continue
        if domain.values is not None:
            if not domain.closed or set(column) - domain.values <= {None}:
                continue
            bad = [i for i, v in enumerate(column) if v is not None and v not in domain.values]
        else:
            outside = np.zeros(columns.rows, dtype=bool)  # NaN (missing) compares False
            if domain.minimum is not None:
                outside |= column < domain.minimum
            if domain.maximum is not None:
                outside |= column > domain.maximum
            bad = np.flatnonzero(outside)
        if len(bad) and (first is None or (bad[0], position) < first[:2]):
            first = (int(bad[0]), position, name, domain)
    if first is not None:
        index, _, name, domain = first
        value = columns.values[name][index]
        value = value.item() if hasattr(value, "item") else value
        problem = domain.violation(value)
        raise InvalidInput(f"instance {index}: feature {name!r}: {problem} (the data validation schema)")
