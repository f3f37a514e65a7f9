"""A dataset's label computed from its rows by the spec's rule (threshold, set of values, expression, column).

Shared by the steps that label rows (prepare; the monitor's ground truth later): pandas and numpy.
"""

from __future__ import annotations

import ast

from components.dataset_spec import COMPARISONS, DatasetSpec, SpecError, parse_expression


def label_values(spec: DatasetSpec, frame):
    """The label of each row (a float Series): 0/1 for a binary label, the value for a regression.

    NaN where one of the label's source columns is missing (the row has no label).
    """
    import numpy as np

    rule = spec.raw["label"]
    if "expression" in rule:
        values = evaluate_expression(rule["expression"], frame)
    elif "threshold" in rule:
        values = COMPARISONS[rule.get("op", ">=")](frame[rule["column"]].astype("float64"), float(rule["threshold"]))
    elif "values" in rule:
        values = frame[rule["column"]].isin(rule["values"])
    else:
        values = frame[rule["column"]]
    missing = np.zeros(len(frame), dtype=bool)
    for name in spec.label_columns:
        missing |= frame[name].isna().to_numpy()
    return values.astype("float64").where(~missing)


def evaluate_expression(text: str, frame):
    """Evaluates an expression over a frame's columns, element-wise (numpy semantics, no Python eval)."""
    import operator

    import numpy as np

    binary = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
    compare = {ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Lt: operator.lt, ast.LtE: operator.le,
               ast.Eq: operator.eq, ast.NotEq: operator.ne}

    def value(node):
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Name):
            return frame[node.id]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp):
            operand = value(node.operand)
            if isinstance(node.op, ast.Not):
                return ~operand.astype(bool) if hasattr(operand, "astype") else not operand
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp):
            return binary[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.BoolOp):
            parts = [np.asarray(value(v), dtype=bool) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            result = parts[0]
            for part in parts[1:]:
                result = combine(result, part)
            return _series_like(frame, result)
        if isinstance(node, ast.Compare):
            left, result = value(node.left), None
            for op, right_node in zip(node.ops, node.comparators):
                right = value(right_node)
                step = compare[type(op)](left, right)
                result = step if result is None else result & step
                left = right
            return result
        raise SpecError(f"{type(node).__name__} is not allowed in an expression")

    return _series_like(frame, value(parse_expression(text)))


def _series_like(frame, values):
    import pandas as pd

    if isinstance(values, pd.Series):
        return values
    import numpy as np

    return pd.Series(np.broadcast_to(values, (len(frame),)), index=frame.index)
