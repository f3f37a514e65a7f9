"""What a closed window says: serving statistics (TFDV), skew, drift, and quality against ground truth.

- **Skew**: the window's statistics against the statistics of the serving
  model's training sample (``reference.parquet`` in its model folder).
- **Drift**: the window's statistics against the previous window's.
- **Degradation**: AUC on the rows whose ground truth arrived, against the AUC
  the model was blessed with on its test span.

The curated schema says which features are compared and how (Jensen-Shannon
divergence for numeric features, L-infinity distance for categorical ones).
Scores are reported per feature; thresholds decide the flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from components import dataset

#: The curated schema of the data validation step: one definition of the comparisons.
CURATED_SCHEMA = dataset.CURATED_SCHEMA


@dataclass
class Thresholds:
    """When the monitor flags a window (the triggers apply their own thresholds to the same scores)."""

    drift: float = 0.1
    skew: float = 0.1
    auc_drop: float = 0.05
    min_labeled_rows: int = 200


def typed_features(frame):
    """The feature columns of logged rows with the types training used (bad values become missing)."""
    import pandas as pd

    typed = pd.DataFrame(index=frame.index)
    for name in dataset.CATEGORICAL_FEATURES:
        typed[name] = frame[name].where(frame[name].map(lambda v: isinstance(v, str)), None).astype(object)
    for name in dataset.NUMERIC_FEATURES:
        typed[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return typed.reset_index(drop=True)


def statistics(frame, beam_args: Optional[list[str]] = None):
    """TFDV statistics of a frame of features: in process, or on a Beam runner when ``beam_args`` are given."""
    if beam_args:
        from components.beam_statistics import beam_frame_statistics

        return beam_frame_statistics(typed_features(frame), beam_args)
    import tensorflow_data_validation as tfdv

    return tfdv.generate_statistics_from_dataframe(typed_features(frame))


def comparison_schema(schema_path: str = CURATED_SCHEMA):
    """The curated schema, with a skew comparator beside each drift comparator.

    Thresholds are set high: the scores are what is read, the monitor's thresholds decide.
    """
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(schema_path)
    for feature in schema.feature:
        if feature.HasField("drift_comparator"):
            feature.skew_comparator.CopyFrom(feature.drift_comparator)
            for comparator in (feature.drift_comparator, feature.skew_comparator):
                if comparator.HasField("jensen_shannon_divergence"):
                    comparator.jensen_shannon_divergence.threshold = 1.0
                if comparator.HasField("infinity_norm"):
                    comparator.infinity_norm.threshold = 1.0
    return schema


def _scores(anomalies, skew: bool) -> dict[str, float]:
    scores = {}
    for info in anomalies.drift_skew_info:
        measurements = info.skew_measurements if skew else info.drift_measurements
        for measurement in measurements:
            feature = ".".join(info.path.step)
            scores[feature] = max(scores.get(feature, 0.0), round(float(measurement.value), 6))
    return dict(sorted(scores.items()))


def drift_scores(current, previous, schema) -> dict[str, float]:
    """Feature -> drift score of ``current`` against ``previous`` statistics."""
    import tensorflow_data_validation as tfdv

    return _scores(tfdv.validate_statistics(current, schema, previous_statistics=previous), skew=False)


def skew_scores(serving, training, schema) -> dict[str, float]:
    """Feature -> skew score of serving statistics against training statistics."""
    import tensorflow_data_validation as tfdv

    return _scores(tfdv.validate_statistics(training, schema, serving_statistics=serving), skew=True)


def quality(frame) -> dict[str, Any]:
    """AUC and accuracy of the logged probabilities on the rows with ground truth."""
    from sklearn.metrics import roc_auc_score

    labeled = frame.dropna(subset=["label"])
    result: dict[str, Any] = {"labeled_rows": int(len(labeled)), "auc": None, "accuracy": None,
                              "positive_rate": None}
    if len(labeled):
        labels = labeled["label"].astype(int)
        result["accuracy"] = float(((labeled["probability"] >= 0.5).astype(int) == labels).mean())
        result["positive_rate"] = float(labels.mean())
        if labels.nunique() > 1:
            result["auc"] = float(roc_auc_score(labels, labeled["probability"]))
    return result


def analyze_window(frame, window_statistics, previous_statistics, reference_statistics, schema,
                   blessed_auc: Optional[float], thresholds: Thresholds) -> dict[str, Any]:
    """Everything the monitor reports about one window.

    Args:
        frame: The window's rows (features, probability, model_version, label).
        window_statistics: TFDV statistics of the window's features.
        previous_statistics: The previous window's statistics, or None.
        reference_statistics: The serving model's training statistics, or None.
        schema: ``comparison_schema()``.
        blessed_auc: The serving model's AUC on its test span when it was blessed.
        thresholds: When to flag drift, skew and degradation.
    """
    result: dict[str, Any] = {"rows": int(len(frame)), **quality(frame)}
    versions = frame["model_version"].value_counts()
    result["model_version"] = str(versions.index[0]) if len(versions) else None
    result["drift"] = drift_scores(window_statistics, previous_statistics, schema) if previous_statistics else {}
    result["skew"] = skew_scores(window_statistics, reference_statistics, schema) if reference_statistics else {}
    result["drifted_features"] = [f for f, v in result["drift"].items() if v > thresholds.drift]
    result["skewed_features"] = [f for f, v in result["skew"].items() if v > thresholds.skew]
    result["blessed_auc"] = blessed_auc
    enough = result["auc"] is not None and result["labeled_rows"] >= thresholds.min_labeled_rows
    result["auc_drop"] = (blessed_auc - result["auc"]) if enough and blessed_auc is not None else None
    result["degraded"] = bool(result["auc_drop"] is not None and result["auc_drop"] > thresholds.auc_drop)
    return result
