"""Data frames as every step reads them: each column by its logical type (pandas, imported where used).

Apart from ``components.sources`` so that a step that reads frames but never a source (validate_data)
does not import the S3 client.
"""

from __future__ import annotations


class UnreadableTypeError(ValueError):
    """A column whose type no step can read: the message names the column and the type."""


def logical_types(frame, where: str = ""):
    """The frame with each column read by its logical type, as writers encode the same values differently.

    Dictionary-encoded and categorical strings, pandas' ``string`` and pyarrow's (large) strings
    become plain strings (object, missing values as None); narrower integers and floats become
    int64 and float64 (an integer column with missing values becomes float64, as pandas reads
    one); booleans and timestamps stay as they are. Values are unchanged.

    Raises:
        UnreadableTypeError: A column's type is none of these (naming ``where``, the column and the type).
    """
    import pandas as pd
    from pandas.api import types

    columns = {}
    for name in frame.columns:
        column = frame[name]
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            categories = dtype.categories
            if len(categories) and not (types.is_string_dtype(categories) or types.is_object_dtype(categories)):
                column = column.astype(categories.dtype if not column.isna().any() else "float64")
                columns[name] = logical_types(pd.DataFrame({name: column}), where)[name]
                continue
            columns[name] = column.astype(object).where(column.notna(), None)
        elif types.is_bool_dtype(dtype) or types.is_datetime64_any_dtype(dtype):
            columns[name] = column
        elif types.is_object_dtype(dtype):
            columns[name] = column
        elif types.is_string_dtype(dtype):
            columns[name] = column.astype(object).where(column.notna(), None)
        elif types.is_integer_dtype(dtype):
            # Nullable integers (Int32, ...) with missing values read as floats, as pandas reads int columns with NaN.
            columns[name] = column.astype("float64") if column.isna().any() else column.astype("int64")
        elif types.is_float_dtype(dtype):
            columns[name] = column.astype("float64")
        else:
            raise UnreadableTypeError(f"{where + ': ' if where else ''}column {name!r} has type {dtype}, "
                                      "which is neither a number, a string, a boolean nor a timestamp")
    return pd.DataFrame(columns, index=frame.index)


def event_times(frame, feed):
    """Each row's event time (naive, in the data's own clock), NaT where it cannot be formed.

    Returns:
        A datetime Series, or None when a column it needs is missing (the schema check names it).
    """
    import pandas as pd

    declared = feed.event_time
    if "column" in declared:
        if declared["column"] not in frame:
            return None
        values, unit = frame[declared["column"]], declared.get("unit", "iso")
        if unit == "iso":
            return pd.to_datetime(values, errors="coerce")
        return pd.to_datetime(pd.to_numeric(values, errors="coerce"), unit=unit, errors="coerce")
    parts = declared["parts"]
    if any(column not in frame for column in parts.values()):
        return None
    number = {part: pd.to_numeric(frame[column], errors="coerce") for part, column in parts.items()}
    if "hhmm" in number:
        number["hour"], number["minute"] = number["hhmm"] // 100, number.pop("hhmm") % 100
    return pd.to_datetime(pd.DataFrame(number), errors="coerce")
