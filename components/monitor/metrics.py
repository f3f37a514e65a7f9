"""The monitor's Prometheus metrics (one registry per monitor, not the process-global one)."""

from __future__ import annotations

from typing import Any

#: Why an event or ground-truth batch was refused (a fixed set keeps label cardinality bounded).
REJECT_REASONS = ("not_cloudevent", "bad_body", "too_large", "bad_ground_truth")


class MonitorMetrics:
    """Counters of what arrived, gauges of what the last analysed window showed."""

    def __init__(self):
        """Creates the metrics in a registry of their own."""
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        self.events = Counter("ct_monitor_events", "Inference events received", ["type"], registry=self.registry)
        self.rejected = Counter("ct_monitor_rejected", "Events or batches refused", ["reason"],
                                registry=self.registry)
        self.predictions = Counter("ct_monitor_predictions", "Prediction rows joined (request + response)",
                                   registry=self.registry)
        self.ground_truth = Counter("ct_monitor_ground_truth", "Ground-truth labels received",
                                    registry=self.registry)
        self.pending = Gauge("ct_monitor_pending_rows", "Rows in the open window", registry=self.registry)
        self.window_rows = Gauge("ct_monitor_window_rows", "Rows in the last analysed window",
                                 registry=self.registry)
        self.labeled_rows = Gauge("ct_monitor_window_labeled_rows", "Rows with ground truth in the last window",
                                  registry=self.registry)
        self.auc = Gauge("ct_monitor_auc", "AUC on ground truth in the last window", ["model_version"],
                         registry=self.registry)
        self.blessed_auc = Gauge("ct_monitor_blessed_auc", "AUC the serving model was blessed with",
                                 ["model_version"], registry=self.registry)
        self.auc_drop = Gauge("ct_monitor_auc_drop", "Blessed AUC minus the last window's AUC",
                              registry=self.registry)
        self.degraded = Gauge("ct_monitor_degraded", "1 when the AUC drop is over its threshold",
                              registry=self.registry)
        self.drift = Gauge("ct_monitor_feature_drift", "Drift score against the previous window", ["feature"],
                           registry=self.registry)
        self.skew = Gauge("ct_monitor_feature_skew", "Skew score against the training sample", ["feature"],
                          registry=self.registry)
        self.drift_detected = Gauge("ct_monitor_drift_detected", "Features drifting over the threshold",
                                    registry=self.registry)
        self.skew_detected = Gauge("ct_monitor_skew_detected", "Features skewed over the threshold",
                                   registry=self.registry)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)

    def show_window(self, result: dict[str, Any]) -> None:
        """Sets the gauges from a window's analysis."""
        version = result.get("model_version") or ""
        self.window_rows.set(result["rows"])
        self.labeled_rows.set(result["labeled_rows"])
        self.auc.clear()
        self.blessed_auc.clear()
        if result.get("auc") is not None:
            self.auc.labels(version).set(result["auc"])
        if result.get("blessed_auc") is not None:
            self.blessed_auc.labels(version).set(result["blessed_auc"])
        self.auc_drop.set(result["auc_drop"] if result.get("auc_drop") is not None else float("nan"))
        self.degraded.set(1 if result.get("degraded") else 0)
        self.drift.clear()
        self.skew.clear()
        for feature, value in result.get("drift", {}).items():
            self.drift.labels(feature).set(value)
        for feature, value in result.get("skew", {}).items():
            self.skew.labels(feature).set(value)
        self.drift_detected.set(len(result.get("drifted_features", [])))
        self.skew_detected.set(len(result.get("skewed_features", [])))

    def render(self) -> bytes:
        """The text exposition format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
