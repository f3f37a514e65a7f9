"""Preparation logic: label the rows and split them deterministically.

The test set is the window's last span (time-based, as the model will meet the
future); train and eval are the other spans, split by a hash of each flight's
identity so that a row stays on its side from run to run. Feature
transformations live in the model's sklearn pipeline, not here, so serving
cannot skew from training.
"""

from __future__ import annotations

from components import dataset
from components.kfp_io import ComponentError

_HASH_KEY = "ct-flights-split"  # 16 bytes, pandas' hash key


def add_label(frame):
    """Adds the label column and drops rows without an arrival delay (cancelled or diverted)."""
    labelled = frame[frame[dataset.LABEL_SOURCE].notna()].copy()
    labelled[dataset.LABEL] = (labelled[dataset.LABEL_SOURCE] >= dataset.DELAY_THRESHOLD_MINUTES).astype("int64")
    return labelled


def hash_buckets(frame):
    """Returns a stable number in [0, 1) per row, from the columns of ``dataset.SPLIT_KEY``."""
    import pandas as pd

    hashes = pd.util.hash_pandas_object(frame[dataset.SPLIT_KEY], index=False, hash_key=_HASH_KEY)
    return (hashes % 10_000).astype("float64") / 10_000


def split(frame, test_span: str, eval_fraction: float) -> tuple[object, object, object]:
    """Splits labelled rows into train, eval and test frames.

    Args:
        frame: Labelled rows with a span column.
        test_span: The span held out as test set.
        eval_fraction: Share of the other spans' rows that goes to eval.

    Raises:
        ComponentError: The test span or the training spans have no labelled rows.
    """
    if not 0 < eval_fraction < 1:
        raise ComponentError(f"eval_fraction must be between 0 and 1, got {eval_fraction}")
    columns = dataset.FEATURES + [dataset.LABEL, dataset.SPAN_COLUMN]
    is_test = frame[dataset.SPAN_COLUMN] == test_span
    test = frame[is_test]
    rest = frame[~is_test]
    if test.empty:
        raise ComponentError(f"test span {test_span} has no labelled rows")
    if rest.empty:
        raise ComponentError("the training spans have no labelled rows")
    is_eval = hash_buckets(rest) < eval_fraction
    return rest[~is_eval][columns], rest[is_eval][columns], test[columns]


def describe(frame) -> dict[str, object]:
    """Artifact metadata of a split: rows, positive rate, spans."""
    return {
        "rows": int(len(frame)),
        "positive_rate": round(float(frame[dataset.LABEL].mean()), 4) if len(frame) else None,
        "spans": sorted(frame[dataset.SPAN_COLUMN].unique().tolist()),
    }
