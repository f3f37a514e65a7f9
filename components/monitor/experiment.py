"""The monitor's side of an online experiment: measure both versions on live ground truth, and decide.

An experiment runs while the registry's ``canary.json`` holds a candidate with an ``experiment``
(``RegistryStore.start_experiment``, from deploy). Each look (after every ground-truth batch and
every closed window, or when asked) gathers, for production and the candidate, the served rows
since the start with their labels, the requests and errors the payload logger reported and their
latencies, and hands them to ``components.experiment.decision.decide`` with the spec's rules.
A decision is applied to the registry (which the model servers follow): promote makes the
candidate production, roll back removes it. Every decision, with its statistics, is appended to
``<state>/experiments.jsonl`` and recorded in the registry's history; the last look is in
``<state>/experiment.json`` and in the Prometheus gauges.
"""

from __future__ import annotations

import calendar
import json
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Optional

EXPERIMENTS_FILE = "experiments.jsonl"
LAST_LOOK_FILE = "experiment.json"
#: One short line per look: each version's labelled rows and metric, the ratio, the outcome (for plots).
LOOKS_FILE = "experiment_looks.jsonl"


def _json_ready(value: Any) -> Any:
    """Numbers JSON can hold: NaN and infinities (a metric of one class, a ratio past float) become None."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def started_epoch(canary: dict[str, Any]) -> float:
    """When an experiment started, in epoch seconds (the registry writes ``%Y-%m-%dT%H:%M:%SZ``)."""
    return float(calendar.timegm(time.strptime(canary["experiment"]["started_at"], "%Y-%m-%dT%H:%M:%SZ")))


class ExperimentJudge:
    """Looks at the running experiment of one model and applies its decision."""

    def __init__(self, state_dir: str, registry, spec, store, metrics,
                 rules=None, on_decision: Optional[Callable[[dict[str, Any]], None]] = None,
                 clock: Callable[[], float] = time.time):
        """Creates the judge of one model's experiments.

        Args:
            state_dir: The monitor's folder.
            registry: The opened model registry.
            spec: The dataset spec (model, task, primary metric, ``[experiment]`` rules).
            store: The monitor's ``WindowStore``.
            metrics: Its ``MonitorMetrics``.
            rules: The ``ExperimentRules`` (default: the spec's).
            on_decision: Called with each decision record after it is applied.
            clock: Epoch seconds now.
        """
        self.state_dir = state_dir
        self.registry = registry
        self.spec = spec
        self.store = store
        self.metrics = metrics
        self.rules = rules or spec.experiment_rules()
        self.on_decision = on_decision
        self.clock = clock
        self._lock = threading.Lock()

    def look(self) -> dict[str, Any]:
        """Looks at the running experiment once; applies and records a decision when there is one.

        Returns:
            ``{"running": False}`` without an experiment, else the look: versions, traffic share,
            start, the decision (``continue``, ``promote`` or ``roll_back``), its reason and statistics.
        """
        from components.experiment.decision import CONTINUE, decide

        with self._lock:
            canary = self.registry.canary(self.spec.model_name)
            if not canary or not canary.get("experiment"):
                self.metrics.show_experiment(None)
                return {"running": False}
            if canary["experiment"].get("decision"):
                # A cluster experiment decided: the releaser applies it (components/deploy/release.py).
                return {"running": False, "model_name": self.spec.model_name, "candidate_version": canary["version"],
                        "release": "pending", **canary["experiment"]["decision"]}
            production_version = canary["experiment"]["production_version"]
            since = started_epoch(canary)
            now = self.clock()
            served = self.store.rows_since(since, {production_version, canary["version"]})
            production = self._arm(served, production_version, since, now)
            candidate = self._arm(served, canary["version"], since, now)
            decision = decide(self.rules, self.spec.metric["primary"], self.spec.metric_direction, production,
                              candidate, now - since, self.spec.task)
            look = {"running": decision.outcome == CONTINUE, "model_name": self.spec.model_name,
                    "candidate_version": canary["version"], "production_version": production_version,
                    "traffic_percent": canary.get("traffic_percent"), "started_at": canary["experiment"]["started_at"],
                    "looked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                    "rules": vars(self.rules), **_json_ready(decision.to_dict())}
            if decision.outcome != CONTINUE:
                self._apply(look, canary)
            self._write(LAST_LOOK_FILE, look)
            self._append(LOOKS_FILE, {
                "candidate_version": look["candidate_version"], "started_at": look["started_at"],
                "looked_at": look["looked_at"], "outcome": look["outcome"],
                "likelihood_ratio": look["statistics"]["likelihood_ratio"],
                **{f"{role}_{key}": arm[key] for role, arm in look["statistics"]["arms"].items()
                   for key in ("version", "labelled_rows", "metric_value")}})
            self.metrics.show_experiment(look)
            return look

    def last_look(self) -> Optional[dict[str, Any]]:
        """The last look written (None before the first)."""
        path = os.path.join(self.state_dir, LAST_LOOK_FILE)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def decisions(self) -> list[dict[str, Any]]:
        """Every decision taken, oldest first."""
        return self._lines(EXPERIMENTS_FILE)

    def _arm(self, served, version: str, since: float, now: float):
        """One version's evidence: its labelled rows among ``served``, and what the logger said of its requests."""
        import numpy as np

        from components.experiment.decision import Arm

        labelled = served[(served["model_version"] == version) & served["label"].notna()]
        counts = self.store.serving_counts(version, since, now)
        return Arm(version, labelled["label"].to_numpy(dtype="float64"), labelled["score"].to_numpy(dtype="float64"),
                   counts["requests"], counts["errors"], np.asarray(counts["latencies_ms"], dtype="float64"))

    def _apply(self, look: dict[str, Any], canary: dict[str, Any]) -> None:
        """Applies a decision in the registry, or records it there for a cluster's releaser; keeps its record.

        Locally the model server follows the registry; a cluster's canary moves only by the releaser.
        """
        from components.experiment.decision import PROMOTE

        summary = {"outcome": look["outcome"], "reason": look["reason"], "decided_at": look["looked_at"],
                   "likelihood_ratio": look["statistics"]["likelihood_ratio"],
                   "improvement": look["statistics"]["improvement"]}
        experiment = canary["experiment"]
        if experiment.get("target") == "kserve":
            # This monitor holds no Kubernetes rights: it records the decision, and the releaser (ct-releaser,
            # manifests/base/releaser.yaml) moves KServe's traffic first, then the registry.
            self.registry.decide_experiment(self.spec.model_name, canary["version"], summary)
            look["release"] = "pending"
        elif look["outcome"] == PROMOTE:
            self.registry.promote(self.spec.model_name, "experiment_promote", experiment=summary)
        else:
            self.registry.set_canary(self.spec.model_name, None, "experiment_rolled_back")
        print(f"[monitor] experiment {look['candidate_version']} against {look['production_version']}: "
              f"{look['outcome']} ({look['reason']})"
              + ("; recorded for the releaser, which moves KServe's traffic" if "release" in look else ""), flush=True)
        self._append(EXPERIMENTS_FILE, look)
        if self.on_decision is not None:
            self.on_decision(look)

    def looks(self) -> list[dict[str, Any]]:
        """Every look's short line (``LOOKS_FILE``), oldest first."""
        return self._lines(LOOKS_FILE)

    def _lines(self, name: str) -> list[dict[str, Any]]:
        path = os.path.join(self.state_dir, name)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def _append(self, name: str, content: dict[str, Any]) -> None:
        with open(os.path.join(self.state_dir, name), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(content, default=float) + "\n")

    def _write(self, name: str, content: dict[str, Any]) -> None:
        path = os.path.join(self.state_dir, name)
        with open(f"{path}.tmp", "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2, default=float)
        os.replace(f"{path}.tmp", path)
