"""Evaluation logic: the task's metrics overall and per slice; ROC and confusion matrix in KFP's format."""

from __future__ import annotations

import math
from typing import Any, Optional

from components.dataset_spec import DatasetSpec
from components.model_metrics import DECISION_THRESHOLD, predictions, task_metrics


def scalar_metrics(labels, values, task: str = "binary_classification",
                   threshold: float = DECISION_THRESHOLD) -> dict[str, float]:
    """The task's metrics (AUC ... log loss, or RMSE, MAE, R²) with the row count."""
    return task_metrics(task, labels, values, threshold)


def roc_curve_points(labels, scores, max_points: int = 100) -> list[dict[str, float]]:
    """ROC curve as KFP ``ClassificationMetrics`` confidence metrics (at most ``max_points``)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(labels, scores)
    step = max(1, math.ceil(len(fpr) / max_points))
    keep = list(range(0, len(fpr), step)) + ([len(fpr) - 1] if (len(fpr) - 1) % step else [])
    return [{"confidenceThreshold": float(min(thresholds[i], 1.0)), "falsePositiveRate": float(fpr[i]),
             "recall": float(tpr[i])} for i in keep]


def confusion_matrix(labels, scores, class_names=("0", "1"), threshold: float = DECISION_THRESHOLD) -> dict[str, Any]:
    """Confusion matrix in KFP ``ClassificationMetrics`` format (rows: truth, columns: prediction)."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    matrix = sk_confusion(labels, (scores >= threshold).astype(int), labels=[0, 1])
    return {"annotationSpecs": [{"displayName": name} for name in class_names],
            "rows": [{"row": [int(v) for v in row]} for row in matrix]}


def slice_metrics(frame, values, spec: DatasetSpec) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics per value of each of the spec's slicing columns, e.g. ``{"origin": {"JFK": {...}}}``."""
    result: dict[str, dict[str, dict[str, float]]] = {}
    labels = frame[spec.label].to_numpy()
    for column in spec.slices:
        result[column] = {}
        column_values = frame[column].to_numpy()
        for value in sorted(set(column_values.tolist()), key=str):
            mask = column_values == value
            result[column][str(value)] = scalar_metrics(labels[mask], values[mask], spec.task)
    return result


def score(model, frame, spec: DatasetSpec):
    """The positive class' probability of each row, or the predicted value for a regression."""
    return predictions(model, frame, spec.features, spec.task)


def evaluate(candidate, test_frame, spec: DatasetSpec, baseline: Optional[object] = None) -> dict[str, Any]:
    """Evaluates the candidate, and the baseline when there is one, on the same test rows.

    Returns:
        ``{"task", "metric", "candidate": {...metrics, "slices": ...}, "baseline": {...} or None}``.
    """
    labels = test_frame[spec.label].to_numpy()
    candidate_values = score(candidate, test_frame, spec)
    result: dict[str, Any] = {
        "task": spec.task,
        "metric": spec.metric["primary"],
        "candidate": {**scalar_metrics(labels, candidate_values, spec.task),
                      "slices": slice_metrics(test_frame, candidate_values, spec)},
        "baseline": None,
    }
    if baseline is not None:
        baseline_values = score(baseline, test_frame, spec)
        result["baseline"] = {**scalar_metrics(labels, baseline_values, spec.task),
                              "slices": slice_metrics(test_frame, baseline_values, spec)}
    return result
