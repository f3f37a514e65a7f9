"""The monitor's Prometheus metrics (one registry per monitor, not the process-global one)."""

from __future__ import annotations

from typing import Any, Optional

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
        self.metric = Gauge("ct_monitor_metric", "The primary metric (the dataset spec's) on ground truth in the "
                            "last window", ["metric", "model_version"], registry=self.registry)
        self.blessed_metric = Gauge("ct_monitor_blessed_metric", "The primary metric the serving model was "
                                    "blessed with", ["metric", "model_version"], registry=self.registry)
        self.metric_drop = Gauge("ct_monitor_metric_drop", "How much worse than blessed the last window's primary "
                                 "metric is (positive: worse)", ["metric"], registry=self.registry)
        self.degraded = Gauge("ct_monitor_degraded", "1 when the metric drop is over its threshold",
                              registry=self.registry)
        self.drift = Gauge("ct_monitor_feature_drift", "Drift score against the previous window", ["feature"],
                           registry=self.registry)
        self.skew = Gauge("ct_monitor_feature_skew", "Skew score against the training sample", ["feature"],
                          registry=self.registry)
        self.drift_detected = Gauge("ct_monitor_drift_detected", "Features drifting over the threshold",
                                    registry=self.registry)
        self.skew_detected = Gauge("ct_monitor_skew_detected", "Features skewed over the threshold",
                                   registry=self.registry)
        self.experiment_running = Gauge("ct_monitor_experiment_running", "1 while an online experiment runs",
                                        registry=self.registry)
        self.experiment_rows = Gauge("ct_monitor_experiment_labeled_rows", "Labelled rows each arm of the running "
                                     "experiment served", ["arm", "model_version"], registry=self.registry)
        self.experiment_metric = Gauge("ct_monitor_experiment_metric", "Each arm's primary metric on the ground "
                                       "truth of the traffic it served", ["arm", "model_version", "metric"],
                                       registry=self.registry)
        self.experiment_ratio = Gauge("ct_monitor_experiment_likelihood_ratio", "The sequential test's statistic "
                                      "(decides at 1/alpha)", registry=self.registry)
        self.experiment_decisions = Counter("ct_monitor_experiment_decisions", "Experiments decided", ["outcome"],
                                            registry=self.registry)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        for outcome in ("promote", "roll_back"):
            self.experiment_decisions.labels(outcome)

    def show_experiment(self, look: Optional[dict[str, Any]]) -> None:
        """Sets the experiment gauges from a look (None: no experiment runs)."""
        self.experiment_rows.clear()
        self.experiment_metric.clear()
        self.experiment_running.set(1 if look and look["running"] else 0)
        if not look:
            self.experiment_ratio.set(float("nan"))
            return
        statistics = look["statistics"]
        for arm, values in statistics["arms"].items():
            self.experiment_rows.labels(arm, values["version"]).set(values["labelled_rows"])
            if values["metric_value"] is not None:
                self.experiment_metric.labels(arm, values["version"], statistics["metric"]).set(values["metric_value"])
        ratio = statistics["likelihood_ratio"]
        self.experiment_ratio.set(ratio if ratio is not None else float("nan"))
        if not look["running"]:
            self.experiment_decisions.labels(look["outcome"]).inc()

    def show_window(self, result: dict[str, Any]) -> None:
        """Sets the gauges from a window's analysis."""
        version = result.get("model_version") or ""
        self.window_rows.set(result["rows"])
        self.labeled_rows.set(result["labeled_rows"])
        metric = result.get("metric") or ""
        self.metric.clear()
        self.blessed_metric.clear()
        self.metric_drop.clear()
        if result.get("metric_value") is not None:
            self.metric.labels(metric, version).set(result["metric_value"])
        if result.get("blessed_metric") is not None:
            self.blessed_metric.labels(metric, version).set(result["blessed_metric"])
        self.metric_drop.labels(metric).set(result["metric_drop"] if result.get("metric_drop") is not None
                                            else float("nan"))
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
