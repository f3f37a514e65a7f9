"""The monitor's domain: payload events into windows, ground truth, and the analysis of a closed window.

The HTTP app around it is ``components/monitor/app.py``.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from typing import Any, Optional

from components import registry
from components.monitor import analysis
from components.monitor.events import EventError, parse_event
from components.monitor.metrics import MonitorMetrics
from components.monitor.store import GroundTruthError, WindowStore, check_label


class Monitor:
    """Receives events and ground truth, analyses windows, keeps the status."""

    def __init__(self, state_dir: str, registry_uri: Optional[str], spec,
                 thresholds: Optional[analysis.Thresholds] = None, beam_args: Optional[list[str]] = None,
                 feature_server_url: Optional[str] = None, experiment_rules=None):
        """Creates a monitor over a state folder.

        Args:
            state_dir: Folder of windows, ground truth and cached statistics.
            registry_uri: The model registry (for a model's training sample and blessed metrics); None: no
                skew or degradation, only drift.
            spec: The dataset spec (``DatasetSpec``): the model's name, features, task, primary metric,
                curated schema and ``[monitoring]`` thresholds.
            thresholds: When to flag drift, skew and degradation (default: the spec's).
            beam_args: Beam pipeline arguments: window statistics on that runner (None: in process).
            feature_server_url: Feast's feature server: the looked-up features of served rows whose
                request left them out are looked up there, as the model server did (None: they stay missing).
            experiment_rules: How online experiments decide (``ExperimentRules``; default: the spec's).
        """
        from components.feature_lookup import FeatureLookup

        self.feature_lookup = FeatureLookup(feature_server_url) if feature_server_url else None
        self.beam_args = beam_args or None
        self.state_dir = os.path.abspath(state_dir)
        self.registry_uri = registry_uri
        self.spec = spec
        self.model_name = spec.model_name
        self.thresholds = thresholds or analysis.Thresholds.from_spec(spec)
        self.store = WindowStore(self.state_dir, spec.features, spec.task)
        self.metrics = MonitorMetrics()
        self._analysis_lock = threading.Lock()
        self._schema = None
        self._registry = registry.open_registry(registry_uri) if registry_uri else None
        self.experiments = None
        if self._registry is not None:
            from components.monitor.experiment import ExperimentJudge

            self.experiments = ExperimentJudge(self.state_dir, self._registry, spec, self.store, self.metrics,
                                               rules=experiment_rules)

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        """Takes one CloudEvent; returns the prediction rows it completed.

        Raises:
            EventError: The event is malformed (nothing is stored from it).
        """
        try:
            event = parse_event(headers, body)
            rows = self.store.add(event)
        except EventError as error:
            self.metrics.rejected.labels(error.reason).inc()
            raise
        self.metrics.events.labels(event.kind).inc()
        self.metrics.predictions.inc(rows)
        self.metrics.pending.set(self.store.pending()["rows"])
        return rows

    def add_ground_truth(self, records: Any) -> int:
        """Stores ground-truth labels; returns how many.

        Raises:
            GroundTruthError: A record is malformed (nothing of the batch is stored).
        """
        try:
            count = self.store.add_ground_truth(records)
        except GroundTruthError:
            self.metrics.rejected.labels("bad_ground_truth").inc()
            raise
        self.metrics.ground_truth.inc(count)
        self.look_at_experiment()
        return count

    def look_at_experiment(self) -> dict[str, Any]:
        """One look at the running online experiment (``ExperimentJudge.look``); ``{"running": False}`` without."""
        if self.experiments is None:
            return {"running": False}
        try:
            return self.experiments.look()
        except Exception as error:  # noqa: BLE001 - a failed look must not lose the ground truth just stored
            print(f"[monitor] the experiment could not be looked at: {error}", flush=True)
            return {"running": None, "error": str(error)}

    def _comparison_schema(self):
        if self._schema is None:
            if self.spec.schema_text is None:
                from components.kfp_io import ComponentError

                raise ComponentError(f"the {self.spec.name} spec names no curated schema: drift and skew need one")
            self._schema = analysis.comparison_schema(self.spec.schema_text)
        return self._schema

    def _version_dir(self, version: str) -> Optional[str]:
        """A local folder with a version's files (a local registry's own, or a download from S3), or None."""
        if self._registry is None or not version or version not in self._registry.versions(self.model_name):
            return None
        return registry.local_copy(self._registry, self.model_name, version,
                                   os.path.join(self.state_dir, "registry-cache"))

    def reference_statistics(self, version: str):
        """TFDV statistics of a model version's training sample (computed once, then cached), or None."""
        from components import model_files

        cache = os.path.join(self.state_dir, "reference", f"{version}.pb")
        if os.path.exists(cache):
            return read_statistics(cache)
        folder = self._version_dir(version)
        if folder is None or not os.path.exists(model_files.reference_path(folder)):
            return None
        import pandas as pd

        stats = analysis.statistics(pd.read_parquet(model_files.reference_path(folder)), self.spec, self.beam_args)
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with open(cache, "wb") as handle:
            handle.write(stats.SerializeToString())
        return stats

    def blessed_metric(self, version: str) -> Optional[float]:
        """The test-span primary metric a model version was blessed with (from its release record), or None."""
        folder = self._version_dir(version)
        path = os.path.join(folder, registry.RELEASE) if folder else None
        if not path or not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return (json.load(handle).get("metrics") or {}).get(self.spec.metric["primary"])

    def close_window(self, label: str) -> dict[str, Any]:
        """Closes the open window as ``label`` and analyses it."""
        check_label(label)
        with self._analysis_lock:
            self.store.close(label)
            self.metrics.pending.set(self.store.pending()["rows"])
            result = self._analyze(label)
        self.look_at_experiment()
        return result

    def evaluate_window(self, label: str) -> dict[str, Any]:
        """Analyses a closed window again (for ground truth that arrived after it closed).

        Raises:
            KeyError: No closed window has that label.
        """
        if check_label(label) not in self.store.closed_windows():
            raise KeyError(label)
        with self._analysis_lock:
            return self._analyze(label)

    def _analyze(self, label: str) -> dict[str, Any]:
        from components.monitor.store import STATISTICS_FILE

        frame, looked_up = self._with_looked_up(self.store.window_frame(label))
        windows = self.store.closed_windows()
        position = windows.index(label)
        previous = windows[position - 1] if position > 0 else None
        folder = os.path.join(self.state_dir, "windows", label)
        stats = analysis.statistics(frame, self.spec, self.beam_args) if len(frame) else None
        if stats is not None:
            with open(os.path.join(folder, STATISTICS_FILE), "wb") as handle:
                handle.write(stats.SerializeToString())
        previous_file = os.path.join(self.state_dir, "windows", previous or "", STATISTICS_FILE)
        previous_stats = read_statistics(previous_file) if previous and os.path.exists(previous_file) else None
        version = analysis.serving_version(frame, self._production_version()) or ""
        if stats is None:
            result = {"rows": 0, "labeled_rows": 0, "metric": self.spec.metric["primary"], "metric_value": None,
                      "model_version": None, "drift": {}, "skew": {}, "drifted_features": [],
                      "skewed_features": [], "blessed_metric": None, "metric_drop": None, "degraded": False}
        else:
            result = analysis.analyze_window(frame, stats, previous_stats, self.reference_statistics(version),
                                             self._comparison_schema(), self.blessed_metric(version),
                                             self.thresholds, self.spec, production=version)
        result.update({"window": label, "previous_window": previous, "window_folder": folder,
                       "looked_up_rows": looked_up,
                       "analysed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                       "thresholds": vars(self.thresholds)})
        self.store.write_result(label, result)
        self.metrics.show_window(result)
        return result

    def _production_version(self) -> Optional[str]:
        """Production now: a running experiment's production version, else the registry's current one."""
        if self._registry is None:
            return None
        try:
            canary = self._registry.canary(self.model_name)
            if canary and canary.get("experiment"):
                return canary["experiment"]["production_version"]
            return (self._registry.current(self.model_name) or {}).get("version")
        except Exception as error:  # noqa: BLE001 - an unreadable registry: judge the majority version
            print(f"[monitor] the registry could not be read: {error}", flush=True)
            return None

    def _lookup_block(self, version: str) -> Optional[dict]:
        """What a model version looks up, and by what (its ``model.json`` ``lookup``), or None."""
        folder = self._version_dir(version)
        try:
            with open(os.path.join(folder or "", "model.json"), encoding="utf-8") as handle:
                block = json.load(handle).get("lookup")
        except (OSError, ValueError):
            return None
        return block if isinstance(block, dict) and block.get("views") else None

    def _with_looked_up(self, frame):
        """Fills the looked-up features of rows whose request left them out; returns (frame, rows filled).

        The model server looked those features up to predict; KServe's payload logger (and ours)
        logs the request as the caller sent it, so the monitor asks the same store for the same keys,
        derived by the model's own ``lookup`` block.
        """
        from components.feature_lookup import FeatureServerError, key_columns, look_up_rows

        looked_up = self.spec.looked_up_features
        if self.feature_lookup is None or frame.empty or not looked_up:
            return frame, 0
        filled = 0
        wanting = frame[looked_up].isna().all(axis=1)
        for version, rows in frame[wanting].groupby("model_version"):
            block = self._lookup_block(str(version))
            if block is None:
                continue
            rows = rows[rows[key_columns(block)].notna().all(axis=1)]
            if rows.empty:
                continue
            columns = {name: rows[name].tolist() for name in rows.columns}
            try:
                values, found, _ = look_up_rows(self.feature_lookup, block, columns, len(rows))
            except FeatureServerError as error:
                print(f"[monitor] the looked-up features of {len(rows):,} served rows cannot be found: {error}",
                      flush=True)
                continue
            for name in block["features"]:
                frame.loc[rows.index, name] = [float("nan") if v is None else v for v in values[name]]
            filled += sum(found)
        return frame, filled

    def status(self) -> dict[str, Any]:
        """Every analysed window, oldest first, the latest one apart, and what is pending."""
        windows = [r for r in (self.store.read_result(w) for w in self.store.closed_windows()) if r]
        return {"model_name": self.model_name, "windows": windows, "latest": windows[-1] if windows else None,
                "pending": self.store.pending(), "ground_truth_rows": len(self.store.ground_truth),
                "dropped_unanswered_requests": self.store.dropped_unanswered,
                "experiment": self.experiments.last_look() if self.experiments else None,
                "experiment_decisions": self.experiments.decisions() if self.experiments else []}


def read_statistics(path: str):
    """A serialized ``DatasetFeatureStatisticsList`` (TFDV statistics) from a file."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    with open(path, "rb") as handle:
        stats.ParseFromString(handle.read())
    return stats
