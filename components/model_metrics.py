"""Model metrics by task, shared by train, evaluate and validate_model (train runtime: scikit-learn).

Binary classification: AUC, accuracy, precision, recall, F1, log loss on the positive class'
probability. Regression: RMSE, MAE, R² on the predicted value. Each metric's direction (which
way is better) is ``components.dataset_spec.METRICS``.
"""

from __future__ import annotations

import math

DECISION_THRESHOLD = 0.5


def metric_value(name: str, labels, values, threshold: float = DECISION_THRESHOLD) -> float:
    """One metric of predictions against labels; NaN when it cannot be computed (AUC of one class, no rows)."""
    import numpy as np
    from sklearn import metrics

    labels, values = np.asarray(labels), np.asarray(values, dtype="float64")
    if len(labels) == 0:
        return float("nan")
    if name == "auc":
        return float(metrics.roc_auc_score(labels, values)) if len(set(labels.tolist())) > 1 else float("nan")
    if name == "log_loss":
        return float(metrics.log_loss(labels, values, labels=[0, 1]))
    if name in ("accuracy", "precision", "recall", "f1"):
        decided = (values >= threshold).astype(int)
        if name == "accuracy":
            return float(metrics.accuracy_score(labels, decided))
        scorer = {"precision": metrics.precision_score, "recall": metrics.recall_score, "f1": metrics.f1_score}[name]
        return float(scorer(labels, decided, zero_division=0))
    if name == "rmse":
        return float(math.sqrt(metrics.mean_squared_error(labels, values)))
    if name == "mae":
        return float(metrics.mean_absolute_error(labels, values))
    if name == "r2":
        return float(metrics.r2_score(labels, values)) if len(labels) > 1 else float("nan")
    raise ValueError(f"unknown metric {name!r}")


def task_metrics(task: str, labels, values, threshold: float = DECISION_THRESHOLD) -> dict[str, float]:
    """Every metric of a task, with the row count (and the positive rate or the label's mean)."""
    import numpy as np

    labels = np.asarray(labels)
    if task == "binary_classification":
        names = ("auc", "accuracy", "precision", "recall", "f1", "log_loss")
        summary = {"positive_rate": float(labels.mean()) if len(labels) else float("nan")}
    else:
        names = ("rmse", "mae", "r2")
        summary = {"label_mean": float(labels.astype("float64").mean()) if len(labels) else float("nan")}
    return {**{name: metric_value(name, labels, values, threshold) for name in names}, **summary,
            "rows": int(len(labels))}


def predictions(model, frame, features: list[str], task: str):
    """What a fitted pipeline says of each row: the positive class' probability, or the regression value."""
    if task == "binary_classification":
        return model.predict_proba(frame[features])[:, 1]
    return model.predict(frame[features])
