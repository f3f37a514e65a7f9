"""Preparation logic: label the rows and split them deterministically.

The test set is the window's last span (time-based, as the model will meet the
future); train and eval are the other spans, split by a hash of each row's
identity (the spec's split key) so that a row stays on its side from run to run. Feature
transformations live in the model's sklearn pipeline, not here, so serving
cannot skew from training.
"""

from __future__ import annotations

from components.dataset_spec import DatasetSpec
from components.kfp_io import ComponentError
from components.labels import label_values
from components.spans import SPAN_COLUMN


def add_label(frame, spec: DatasetSpec):
    """Adds the label column by the spec's rule and drops rows whose label's sources are missing."""
    values = label_values(spec, frame)
    keep = values.notna().to_numpy()
    labelled = frame[keep].copy()
    kept = values[keep]
    labelled[spec.label] = kept.astype("int64") if spec.task == "binary_classification" else kept.astype("float64")
    return labelled


def hash_buckets(frame, spec: DatasetSpec):
    """Returns a stable number in [0, 1) per row, from the spec's split key columns and salt."""
    import pandas as pd

    hashes = pd.util.hash_pandas_object(frame[spec.split_key], index=False, hash_key=spec.split_salt)
    return (hashes % 10_000).astype("float64") / 10_000


def split(frame, spec: DatasetSpec, test_span: str, eval_fraction: float) -> tuple[object, object, object]:
    """Splits labelled rows into train, eval and test frames.

    Args:
        frame: Labelled rows with a span column.
        spec: The dataset spec (features, label, split key).
        test_span: The span held out as test set.
        eval_fraction: Share of the other spans' rows that goes to eval.

    Raises:
        ComponentError: The test span or the training spans have no labelled rows.
    """
    if not 0 < eval_fraction < 1:
        raise ComponentError(f"eval_fraction must be between 0 and 1, got {eval_fraction}")
    columns = spec.features + [spec.label, SPAN_COLUMN]
    is_test = frame[SPAN_COLUMN] == test_span
    test = frame[is_test]
    rest = frame[~is_test]
    if test.empty:
        raise ComponentError(f"test span {test_span} has no labelled rows")
    if rest.empty:
        raise ComponentError("the training spans have no labelled rows")
    is_eval = hash_buckets(rest, spec) < eval_fraction
    return rest[~is_eval][columns], rest[is_eval][columns], test[columns]


def describe(frame, spec: DatasetSpec) -> dict[str, object]:
    """Artifact metadata of a split: rows, positive rate (or the label's mean for a regression), spans."""
    key = "positive_rate" if spec.task == "binary_classification" else "label_mean"
    return {
        "rows": int(len(frame)),
        key: round(float(frame[spec.label].mean()), 4) if len(frame) else None,
        "spans": sorted(frame[SPAN_COLUMN].unique().tolist()),
    }
