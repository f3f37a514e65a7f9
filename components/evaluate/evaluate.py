"""Evaluation logic: metrics overall and per slice, ROC and confusion matrix in KFP's format."""

from __future__ import annotations

import math
from typing import Any, Optional

from components import dataset

SLICE_COLUMNS = ("origin", "carrier")
DECISION_THRESHOLD = 0.5


def scalar_metrics(labels, scores, threshold: float = DECISION_THRESHOLD) -> dict[str, float]:
    """AUC, accuracy, precision, recall, F1, log loss, positive rate and row count."""
    from sklearn import metrics

    predictions = (scores >= threshold).astype(int)
    both_classes = len(set(labels)) > 1
    return {
        "auc": float(metrics.roc_auc_score(labels, scores)) if both_classes else float("nan"),
        "accuracy": float(metrics.accuracy_score(labels, predictions)),
        "precision": float(metrics.precision_score(labels, predictions, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predictions, zero_division=0)),
        "f1": float(metrics.f1_score(labels, predictions, zero_division=0)),
        "log_loss": float(metrics.log_loss(labels, scores, labels=[0, 1])),
        "positive_rate": float(labels.mean()),
        "rows": int(len(labels)),
    }


def roc_curve_points(labels, scores, max_points: int = 100) -> list[dict[str, float]]:
    """ROC curve as KFP ``ClassificationMetrics`` confidence metrics (at most ``max_points``)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(labels, scores)
    step = max(1, math.ceil(len(fpr) / max_points))
    keep = list(range(0, len(fpr), step)) + ([len(fpr) - 1] if (len(fpr) - 1) % step else [])
    return [{"confidenceThreshold": float(min(thresholds[i], 1.0)), "falsePositiveRate": float(fpr[i]),
             "recall": float(tpr[i])} for i in keep]


def confusion_matrix(labels, scores, threshold: float = DECISION_THRESHOLD) -> dict[str, Any]:
    """Confusion matrix in KFP ``ClassificationMetrics`` format (rows: truth, columns: prediction)."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    matrix = sk_confusion(labels, (scores >= threshold).astype(int), labels=[0, 1])
    return {"annotationSpecs": [{"displayName": "on_time"}, {"displayName": "delayed"}],
            "rows": [{"row": [int(v) for v in row]} for row in matrix]}


def slice_metrics(frame, scores, columns=SLICE_COLUMNS) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics per value of each slicing column, e.g. ``{"origin": {"JFK": {...}}}``."""
    result: dict[str, dict[str, dict[str, float]]] = {}
    labels = frame[dataset.LABEL].to_numpy()
    for column in columns:
        result[column] = {}
        values = frame[column].to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            result[column][str(value)] = scalar_metrics(labels[mask], scores[mask])
    return result


def score(model, frame):
    """Probability of delay for each row."""
    return model.predict_proba(frame[dataset.FEATURES])[:, 1]


def evaluate(candidate, test_frame, baseline: Optional[object] = None) -> dict[str, Any]:
    """Evaluates the candidate, and the baseline when there is one, on the same test rows.

    Returns:
        ``{"candidate": {...metrics, "slices": ...}, "baseline": {...} or None}``.
    """
    labels = test_frame[dataset.LABEL].to_numpy()
    candidate_scores = score(candidate, test_frame)
    result: dict[str, Any] = {
        "candidate": {**scalar_metrics(labels, candidate_scores),
                      "slices": slice_metrics(test_frame, candidate_scores)},
        "baseline": None,
    }
    if baseline is not None:
        baseline_scores = score(baseline, test_frame)
        result["baseline"] = {**scalar_metrics(labels, baseline_scores),
                              "slices": slice_metrics(test_frame, baseline_scores)}
    return result
