"""The rules of an online experiment (standard library only: the spec validates them in every runtime).

A spec's optional ``[experiment]`` table sets them (``DatasetSpec.experiment_rules``); the
decision itself is ``components/experiment/decision.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class ExperimentRules:
    """When an experiment may decide, and how.

    Attributes:
        alpha: The test's level: the chance of ever declaring a difference between equal arms.
        min_effect: The scale of the effects of interest, in the metric's units (the mixture's
            standard deviation): the test is most sensitive to differences of about this size.
        min_labelled_rows: Labelled rows each arm needs before the metric is compared.
        min_class_rows: A classification: rows of each class each arm needs too.
        max_duration_seconds: After this long without a decision, the candidate is rolled back.
        max_labelled_rows: Or after this many labelled rows in the smaller arm (0: no limit).
        max_error_rate_increase: Rolled back when the candidate's error rate exceeds production's by more.
        max_latency_ratio: Rolled back when the candidate's p99 latency exceeds production's times this,
        latency_slack_ms: plus this.
        min_guard_requests: Requests each arm needs before the guards judge it.
    """

    alpha: float = 0.05
    min_effect: float = 0.01
    min_labelled_rows: int = 200
    min_class_rows: int = 20
    max_duration_seconds: float = 7 * 24 * 3600.0
    max_labelled_rows: int = 0
    max_error_rate_increase: float = 0.01
    max_latency_ratio: float = 1.5
    latency_slack_ms: float = 5.0
    min_guard_requests: int = 200

    def __post_init__(self):
        problems = []
        if not 0 < self.alpha < 0.5:
            problems.append(f"alpha must be in (0, 0.5), got {self.alpha}")
        if not self.min_effect > 0:
            problems.append(f"min_effect must be > 0, got {self.min_effect}")
        if self.min_labelled_rows < 2 or self.min_class_rows < 1:
            problems.append("min_labelled_rows must be >= 2 and min_class_rows >= 1")
        if not self.max_duration_seconds > 0 or self.max_labelled_rows < 0:
            problems.append("max_duration_seconds must be > 0 and max_labelled_rows >= 0")
        if self.max_error_rate_increase < 0 or self.max_latency_ratio < 1 or self.latency_slack_ms < 0:
            problems.append("max_error_rate_increase >= 0, max_latency_ratio >= 1 and latency_slack_ms >= 0")
        if problems:
            raise ValueError("experiment rules: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, values: Optional[dict[str, Any]]) -> ExperimentRules:
        """Rules from a mapping (unknown keys are refused, naming them)."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"experiment rules: unknown {', '.join(unknown)} "
                             f"(known: {', '.join(cls.__dataclass_fields__)})")
        return cls(**values)

    @classmethod
    def from_settings(cls, settings: list[str], base: Optional[ExperimentRules] = None) -> ExperimentRules:
        """Rules from ``KEY=VALUE`` settings over ``base`` (a command line's ``--experiment alpha=0.01``).

        Raises:
            ValueError: A setting that is not ``KEY=VALUE``, an unknown key, or a value of the wrong type.
        """
        values = dict(vars(base)) if base is not None else {}
        for setting in settings:
            key, equals, text = setting.partition("=")
            if not equals or key not in cls.__dataclass_fields__:
                raise ValueError(f"experiment setting {setting!r}: expected KEY=VALUE with KEY one of "
                                 f"{', '.join(cls.__dataclass_fields__)}")
            kind = type(cls.__dataclass_fields__[key].default)
            try:
                values[key] = kind(text)
            except ValueError:
                raise ValueError(f"experiment setting {setting!r}: {key} must be {kind.__name__}") from None
        return cls.from_dict(values)

