"""What a closed window says: serving statistics (TFDV), skew, drift, and quality against ground truth.

- **Skew**: the window's statistics against the statistics of the serving
  model's training sample (``reference.parquet`` in its model folder).
- **Drift**: the window's statistics against the previous window's.
- **Degradation**: the dataset spec's primary metric (AUC, RMSE, ...) on the rows whose
  ground truth arrived, against the value the model was blessed with on its test span.

The curated schema says which features are compared and how (Jensen-Shannon
divergence for numeric features, L-infinity distance for categorical ones).
Scores are reported per feature; thresholds decide the flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class Thresholds:
    """When the monitor flags a window (the triggers apply their own thresholds to the same scores).

    ``max_metric_drop`` is in the primary metric's own unit (AUC, or the label's unit for RMSE):
    how much worse than blessed a window may be.
    """

    drift: float = 0.1
    skew: float = 0.1
    max_metric_drop: float = 0.05
    min_labeled_rows: int = 200

    @classmethod
    def from_spec(cls, spec, **overrides) -> Thresholds:
        """The spec's ``[monitoring]`` thresholds, then any override that is not None."""
        monitoring = spec.monitoring
        values = {"drift": monitoring.get("drift_threshold", cls.drift),
                  "skew": monitoring.get("skew_threshold", cls.skew),
                  "max_metric_drop": monitoring.get("max_metric_drop", cls.max_metric_drop),
                  "min_labeled_rows": cls.min_labeled_rows}
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)


def typed_features(frame, spec):
    """The feature columns of logged rows with the types training used (bad values become missing)."""
    import pandas as pd

    typed = pd.DataFrame(index=frame.index)
    for name in spec.categorical:
        typed[name] = frame[name].where(frame[name].map(lambda v: isinstance(v, str)), None).astype(object)
    for name in spec.numeric:
        typed[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return typed.reset_index(drop=True)


def statistics(frame, spec, beam_args: Optional[list[str]] = None):
    """TFDV statistics of a frame of features: in process, or on a Beam runner when ``beam_args`` are given."""
    if beam_args:
        from components.beam_statistics import beam_frame_statistics

        return beam_frame_statistics(typed_features(frame, spec), beam_args)
    import tensorflow_data_validation as tfdv

    return tfdv.generate_statistics_from_dataframe(typed_features(frame, spec))


def comparison_schema(schema_text: str):
    """The curated schema (its text), with a skew comparator beside each drift comparator.

    Thresholds are set high: the scores are what is read, the monitor's thresholds decide.
    """
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = text_format.Parse(schema_text, schema_pb2.Schema())
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


def quality(frame, spec) -> dict[str, Any]:
    """The model's quality on the rows with ground truth: the primary metric and the task's others.

    Classification: AUC, accuracy and the positive rate of the logged probabilities; regression:
    RMSE, MAE and the mean label of the logged predictions (``score``).
    """
    import numpy as np

    labeled = frame.dropna(subset=["label"])
    result: dict[str, Any] = {"labeled_rows": int(len(labeled)), "metric": spec.metric["primary"],
                              "metric_value": None}
    if spec.task == "regression":
        result.update({"rmse": None, "mae": None, "mean_label": None})
        if len(labeled):
            error = labeled["score"].astype(float) - labeled["label"].astype(float)
            result.update({"rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error))),
                           "mean_label": float(labeled["label"].astype(float).mean())})
            if spec.metric["primary"] == "r2" and len(labeled) > 1:
                from sklearn.metrics import r2_score

                result["r2"] = float(r2_score(labeled["label"].astype(float), labeled["score"].astype(float)))
    else:
        from sklearn.metrics import roc_auc_score

        result.update({"auc": None, "accuracy": None, "positive_rate": None})
        if len(labeled):
            labels = labeled["label"].astype(int)
            result["accuracy"] = float(((labeled["score"] >= 0.5).astype(int) == labels).mean())
            result["positive_rate"] = float(labels.mean())
            if labels.nunique() > 1:
                result["auc"] = float(roc_auc_score(labels, labeled["score"]))
    result["metric_value"] = result.get(spec.metric["primary"])
    return result


def metric_drop(value: Optional[float], blessed: Optional[float], direction: str) -> Optional[float]:
    """How much worse ``value`` is than ``blessed`` in the metric's direction (positive: worse)."""
    if value is None or blessed is None:
        return None
    return blessed - value if direction == "maximize" else value - blessed


def serving_version(frame, production: Optional[str] = None) -> Optional[str]:
    """The version a window is judged as: production when it served rows, else the one that served most.

    During an online experiment the candidate may have served more of the window than production.
    """
    versions = frame["model_version"].astype(str).value_counts()
    if production and production in versions.index:
        return production
    return str(versions.index[0]) if len(versions) else None


def analyze_window(frame, window_statistics, previous_statistics, reference_statistics, schema,
                   blessed_metric: Optional[float], thresholds: Thresholds, spec,
                   production: Optional[str] = None) -> dict[str, Any]:
    """Everything the monitor reports about one window.

    Args:
        frame: The window's rows (features, score, model_version, label); the metric is that of the
            version ``serving_version`` names, on its rows (``labeled_rows`` counts those).
        window_statistics: TFDV statistics of the window's features.
        previous_statistics: The previous window's statistics, or None.
        reference_statistics: The serving model's training statistics, or None.
        schema: ``comparison_schema()``.
        blessed_metric: The serving model's primary metric on its test span when it was blessed.
        thresholds: When to flag drift, skew and degradation.
        spec: The dataset spec (task, primary metric and its direction).
        production: The version in production (the registry's; None: unknown).
    """
    versions = frame["model_version"].astype(str).value_counts()
    version = serving_version(frame, production)
    # During an online experiment two versions served the window: the metric (and degradation) is
    # production's, on its own rows; the features' drift and skew are the whole window's.
    own = frame[frame["model_version"].astype(str) == version] if len(versions) > 1 else frame
    result: dict[str, Any] = {"rows": int(len(frame)), **quality(own, spec)}
    result["model_version"] = version
    result["rows_by_version"] = {str(name): int(count) for name, count in versions.items()}
    result["drift"] = drift_scores(window_statistics, previous_statistics, schema) if previous_statistics else {}
    result["skew"] = skew_scores(window_statistics, reference_statistics, schema) if reference_statistics else {}
    result["drifted_features"] = [f for f, v in result["drift"].items() if v > thresholds.drift]
    result["skewed_features"] = [f for f, v in result["skew"].items() if v > thresholds.skew]
    result["blessed_metric"] = blessed_metric
    enough = result["labeled_rows"] >= thresholds.min_labeled_rows
    result["metric_drop"] = metric_drop(result["metric_value"], blessed_metric, spec.metric_direction) \
        if enough else None
    result["degraded"] = bool(result["metric_drop"] is not None and result["metric_drop"] > thresholds.max_metric_drop)
    return result
