"""The five reasons to run the CT pipeline, each a pure check with its own configuration.

- **on demand**: a person asks (``make trigger``).
- **schedule**: a cron expression in KFP's format (seconds first, ``0 0 6 * * *``);
  on a cluster the recurring run of ``make schedule`` does this.
- **new data**: spans newer than the last one a run tested on, at least ``new_data_min_spans`` of them.
- **degradation**: the monitor's primary metric on ground truth (the dataset spec's: AUC, RMSE, ...)
  got more than ``max_metric_drop`` worse than the serving model was blessed with (with enough labels).
- **drift / skew**: at least ``min_features`` features score over the threshold
  against the previous window (drift) or the model's training sample (skew).

A check returns a ``Trigger`` (kind + a reason a person can read) or None.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Optional

KINDS = ("on_demand", "schedule", "new_data", "degradation", "drift", "skew")


@dataclass(frozen=True)
class Trigger:
    """Why a run should start."""

    kind: str
    reason: str
    at: str = ""

    def as_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"kind": self.kind, "reason": self.reason, "at": self.at}


@dataclass
class TriggerPolicy:
    """Which triggers are on, and their thresholds (0 or "" turns one off).

    ``drift_features`` and ``skew_features`` restrict what is watched (empty: every compared feature).
    ``max_metric_drop`` is in the primary metric's unit (the monitor reports the drop, positive: worse).
    """

    schedule_cron: str = ""
    new_data_min_spans: int = 1
    max_metric_drop: float = 0.05
    min_labeled_rows: int = 200
    drift_threshold: float = 0.2
    skew_threshold: float = 0.2
    min_features: int = 1
    drift_features: tuple[str, ...] = field(default_factory=tuple)
    skew_features: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_spec(cls, spec, **values) -> TriggerPolicy:
        """A policy with the dataset spec's ``[monitoring]`` thresholds and watched features, then ``values``."""
        monitoring = spec.monitoring
        defaults = {key: monitoring[name] for key, name in (("max_metric_drop", "max_metric_drop"),
                                                           ("drift_threshold", "drift_threshold"),
                                                           ("skew_threshold", "skew_threshold")) if name in monitoring}
        if monitoring.get("features"):
            defaults["drift_features"] = defaults["skew_features"] = tuple(monitoring["features"])
        return cls(**{**defaults, **values})

    def __post_init__(self):
        """Checks the values, so a typo fails at start and not on the first check."""
        if self.schedule_cron:
            from croniter import croniter

            if not croniter.is_valid(self.schedule_cron, second_at_beginning=True):
                raise ValueError(f"schedule {self.schedule_cron!r} is not a cron expression "
                                 "(six fields, seconds first, as KFP's recurring runs: '0 0 6 * * *')")
        for name in ("new_data_min_spans", "min_labeled_rows", "min_features"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_metric_drop", "drift_threshold", "skew_threshold"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def check_schedule(cron: str, last_check: Optional[datetime.datetime],
                   now: datetime.datetime) -> Optional[Trigger]:
    """Fires when a scheduled time fell in ``(last_check, now]`` (never on the first check: no catch-up)."""
    if not cron or last_check is None or now <= last_check:
        return None
    from croniter import croniter

    due = croniter(cron, last_check, second_at_beginning=True).get_next(datetime.datetime)
    if due > now:
        return None
    return Trigger("schedule", f"scheduled run due at {_iso(due)} ({cron})", _iso(now))


def check_new_data(spans: list[str], tested_through: Optional[str], min_spans: int,
                   now: datetime.datetime) -> Optional[Trigger]:
    """Fires when at least ``min_spans`` spans are newer than the last span a run tested on.

    Before any run, two spans (one to train on, one to test on) are enough: the first model comes first.
    """
    if min_spans <= 0 or len(spans) < 2:
        return None
    if tested_through is None:
        return Trigger("new_data", f"first model: {len(spans)} spans and no run yet", _iso(now))
    new = [span for span in sorted(spans) if tested_through is None or span > tested_through]
    if len(new) < min_spans:
        return None
    return Trigger("new_data", f"{len(new)} new span(s): {', '.join(new)}", _iso(now))


def check_degradation(window: Optional[dict[str, Any]], policy: TriggerPolicy,
                      now: datetime.datetime) -> Optional[Trigger]:
    """Fires when the window's primary metric on ground truth is more than ``max_metric_drop`` worse than blessed."""
    if not window or policy.max_metric_drop <= 0:
        return None
    value, blessed, drop = window.get("metric_value"), window.get("blessed_metric"), window.get("metric_drop")
    labeled = window.get("labeled_rows", 0)
    if value is None or blessed is None or drop is None or labeled < policy.min_labeled_rows:
        return None
    if drop <= policy.max_metric_drop:
        return None
    name = str(window.get("metric") or "metric").upper()
    return Trigger("degradation", f"window {window['window']}: {name} {value:.4f} on {labeled} labels, "
                                  f"{drop:.4f} worse than the blessed {blessed:.4f} of {window.get('model_version')} "
                                  f"(max drop {policy.max_metric_drop})", _iso(now))


def _over(scores: dict[str, float], threshold: float, watched: tuple[str, ...]) -> list[tuple[str, float]]:
    return sorted(((f, v) for f, v in scores.items() if v > threshold and (not watched or f in watched)),
                  key=lambda item: -item[1])


def check_distribution(kind: str, window: Optional[dict[str, Any]], policy: TriggerPolicy,
                       now: datetime.datetime) -> Optional[Trigger]:
    """Fires (``kind`` ``drift`` or ``skew``) when enough features score over the threshold."""
    threshold = policy.drift_threshold if kind == "drift" else policy.skew_threshold
    if not window or threshold <= 0 or policy.min_features <= 0:
        return None
    watched = policy.drift_features if kind == "drift" else policy.skew_features
    over = _over(window.get(kind) or {}, threshold, watched)
    if len(over) < policy.min_features:
        return None
    against = (f"previous window {window.get('previous_window')}" if kind == "drift"
               else f"the training sample of {window.get('model_version')}")
    listed = ", ".join(f"{feature} {value:.3f}" for feature, value in over)
    return Trigger(kind, f"window {window['window']}: {listed} > {threshold} against {against}", _iso(now))


def check_window(window: Optional[dict[str, Any]], policy: TriggerPolicy,
                 now: datetime.datetime) -> list[Trigger]:
    """The monitor-driven triggers of one analysed window: degradation, drift, skew."""
    found = [check_degradation(window, policy, now), check_distribution("drift", window, policy, now),
             check_distribution("skew", window, policy, now)]
    return [trigger for trigger in found if trigger]


def trigger_label(batch: list[Trigger]) -> str:
    """The reason recorded for a run: its trigger kinds, then each trigger's reason."""
    kinds = "+".join(sorted({t.kind for t in batch}))
    return f"{kinds}: " + " | ".join(t.reason for t in batch)
