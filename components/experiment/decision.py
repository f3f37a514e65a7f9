"""The decision of an online experiment: promote the candidate, roll it back, or keep measuring.

The test is a mixture sequential probability ratio test (mSPRT) on the difference of the
dataset's primary metric between the two arms, measured on the ground truth of the traffic each
arm served (Johari, Pekelis, Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests",
Operations Research 2022, section 4: the normal mixture with a plug-in variance). Why this test
and not a bootstrap interval at a fixed horizon: the monitor looks at the experiment every time
ground truth arrives, as often as it likes; a fixed-horizon interval read at every look promotes
an equal candidate far more often than its level says, while the mixture's likelihood ratio
stays below ``1/alpha`` with probability at least ``1 - alpha`` over *all* looks (Ville's
inequality), so the experiment can stop the first time the evidence suffices.

The difference is ``improvement = candidate - production`` for a metric to maximize and
``production - candidate`` for one to minimize: positive always means the candidate is better.
Its variance is the sum of the arms' (their rows are disjoint): DeLong's for AUC (computed
from midranks, Sun and Xu 2014), the variance of a mean for the metrics that are means of a
per-row loss (accuracy, log loss, MAE; RMSE through the delta method on the mean squared error),
and a bootstrap for the others (precision, recall, F1, R2).

Guards act before the metric: a candidate answering errors or slowly is rolled back whatever
its metric says. Without a significant difference by the maximum duration (or labelled rows),
the candidate is rolled back: production stays what it is unless the candidate is shown better.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np

from components.experiment.rules import ExperimentRules

CONTINUE, PROMOTE, ROLL_BACK = "continue", "promote", "roll_back"
#: Metrics that are the mean of a per-row loss (their variance is that of a mean).
_PER_ROW = ("accuracy", "log_loss", "mae", "rmse")
_BOOTSTRAP_RESAMPLES = 200


@dataclass
class Arm:
    """What one version of the model did during the experiment.

    Attributes:
        version: The model version.
        labels: Ground truth of the labelled rows it answered.
        scores: What it answered for them (a probability or a predicted value).
        requests: Requests routed to it.
        errors: Of these, the ones it did not answer.
        latencies_ms: Request latencies it had (any sample of them).
    """

    version: str
    labels: np.ndarray = field(default_factory=lambda: np.empty(0))
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    requests: int = 0
    errors: int = 0
    latencies_ms: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass
class Decision:
    """The outcome of one look at an experiment, with everything it rests on."""

    outcome: str
    reason: str
    statistics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def auc_with_variance(labels, scores) -> tuple[float, float]:
    """AUC of scores against 0/1 labels and DeLong's variance of it (ties count one half).

    Works on one experiment (1-D arrays) or many of the same length (2-D, one per row): one sort
    per row, then DeLong's placement values from the counts of the other class below and tied.

    Returns:
        ``(auc, variance)``: arrays of the leading shape, or floats for 1-D input; NaN where a
        class has fewer than two rows.
    """
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype="float64")
    single = labels.ndim == 1
    labels, scores = np.atleast_2d(labels), np.atleast_2d(scores)
    rows, width = labels.shape
    order = np.argsort(scores, axis=1)
    ordered, positive = np.take_along_axis(scores, order, axis=1), np.take_along_axis(labels, order, axis=1)
    positives_upto = np.cumsum(positive, axis=1)
    negatives_upto = np.arange(1, width + 1)[None, :] - positives_upto
    positives, negatives = positives_upto[:, -1], negatives_upto[:, -1]
    # Each position's run of tied scores: its first and last index.
    index = np.broadcast_to(np.arange(width), (rows, width))
    new_run = np.ones((rows, width), dtype=bool)
    new_run[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.maximum.accumulate(np.where(new_run, index, 0), axis=1)
    run_ends = np.ones((rows, width), dtype=bool)
    run_ends[:, :-1] = new_run[:, 1:]
    last = np.flip(np.minimum.accumulate(np.flip(np.where(run_ends, index, width - 1), axis=1), axis=1), axis=1)

    def before(counts_upto):  # the count over positions before each run
        return np.where(first > 0, np.take_along_axis(counts_upto, np.maximum(first - 1, 0), axis=1), 0)

    negatives_below, positives_below = before(negatives_upto), before(positives_upto)
    negatives_tied = np.take_along_axis(negatives_upto, last, axis=1) - negatives_below
    positives_tied = np.take_along_axis(positives_upto, last, axis=1) - positives_below
    with np.errstate(invalid="ignore", divide="ignore"):
        # DeLong's V10 of each positive and V01 of each negative.
        v10 = (negatives_below + 0.5 * negatives_tied) / negatives[:, None]
        v01 = (positives[:, None] - positives_below - positives_tied + 0.5 * positives_tied) / positives[:, None]
        auc = np.where(positive, v10, 0).sum(axis=1) / positives
        s10 = np.where(positive, (v10 - auc[:, None]) ** 2, 0).sum(axis=1) / (positives - 1)
        s01 = np.where(positive, 0, (v01 - auc[:, None]) ** 2).sum(axis=1) / (negatives - 1)
        variance = s10 / positives + s01 / negatives
    bad = (positives < 2) | (negatives < 2)
    auc, variance = np.where(bad, np.nan, auc), np.where(bad, np.nan, variance)
    return (float(auc[0]), float(variance[0])) if single else (auc, variance)


def metric_with_variance(metric: str, labels, scores, rng: Optional[np.random.Generator] = None
                         ) -> tuple[float, float]:
    """An arm's value of a primary metric and the variance of that estimate.

    Raises:
        ValueError: A metric none of ``components.dataset_spec.METRICS`` names.
    """
    labels, scores = np.asarray(labels, dtype="float64"), np.asarray(scores, dtype="float64")
    rows = len(labels)
    if metric == "auc":
        return auc_with_variance(labels, scores)
    if rows < 2:
        return math.nan, math.nan
    if metric in _PER_ROW:
        if metric == "accuracy":
            losses = ((scores >= 0.5) == (labels == 1)).astype("float64")
        elif metric == "log_loss":
            clipped = np.clip(scores, 1e-15, 1 - 1e-15)
            losses = -(labels * np.log(clipped) + (1 - labels) * np.log1p(-clipped))
        elif metric == "mae":
            losses = np.abs(scores - labels)
        else:
            losses = (scores - labels) ** 2
        mean, variance = float(losses.mean()), float(losses.var(ddof=1) / rows)
        if metric == "rmse":
            # Delta method: d sqrt(m) / dm = 1 / (2 sqrt(m)).
            root = math.sqrt(mean)
            return root, (variance / (4 * mean) if mean > 0 else 0.0)
        return mean, variance
    from components.model_metrics import metric_value

    value = metric_value(metric, labels, scores)
    rng = rng or np.random.default_rng(0)
    resampled = [metric_value(metric, labels[picks], scores[picks])
                 for picks in rng.integers(0, rows, size=(_BOOTSTRAP_RESAMPLES, rows))]
    return value, float(np.nanvar(resampled, ddof=1))


def mixture_log_likelihood_ratio(improvement, variance, min_effect: float):
    """The log of the normal-mixture SPRT statistic for ``improvement != 0`` (Johari et al., eq. 11).

    ``improvement`` is estimated with ``variance``; the mixing distribution over the true
    difference is ``N(0, min_effect**2)``. In logs: overwhelming evidence (a ratio past a float's
    range) stays a finite number. Arrays broadcast.
    """
    tau2 = min_effect ** 2
    improvement, variance = np.asarray(improvement, dtype="float64"), np.asarray(variance, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.log(variance / (variance + tau2)) + tau2 * improvement ** 2 / (2 * variance * (variance + tau2))


def _p99(latencies) -> Optional[float]:
    latencies = np.asarray(latencies, dtype="float64")
    return float(np.percentile(latencies, 99)) if len(latencies) else None


def guard_violations(rules: ExperimentRules, production: Arm, candidate: Arm) -> list[str]:
    """Why the candidate must stop now whatever its metric: errors or latency beyond the rules."""
    if min(production.requests, candidate.requests) < rules.min_guard_requests:
        return []
    reasons = []
    production_rate = production.errors / production.requests
    candidate_rate = candidate.errors / candidate.requests
    if candidate_rate > production_rate + rules.max_error_rate_increase:
        reasons.append(f"error rate {candidate_rate:.2%} against production's {production_rate:.2%} "
                       f"(at most {rules.max_error_rate_increase:.2%} more)")
    production_p99, candidate_p99 = _p99(production.latencies_ms), _p99(candidate.latencies_ms)
    if production_p99 is not None and candidate_p99 is not None:
        limit = production_p99 * rules.max_latency_ratio + rules.latency_slack_ms
        if candidate_p99 > limit:
            reasons.append(f"p99 latency {candidate_p99:.1f} ms against production's {production_p99:.1f} ms "
                           f"(at most {limit:.1f} ms)")
    return reasons


def _enough_rows(rules: ExperimentRules, arm: Arm, classification: bool) -> bool:
    if len(arm.labels) < rules.min_labelled_rows:
        return False
    if classification:
        positives = int(np.sum(np.asarray(arm.labels) == 1))
        return min(positives, len(arm.labels) - positives) >= rules.min_class_rows
    return True


def decide(rules: ExperimentRules, metric: str, direction: str, production: Arm, candidate: Arm,
           elapsed_seconds: float, task: str = "binary_classification") -> Decision:
    """One look at an experiment.

    Args:
        rules: The experiment's rules.
        metric: The primary metric (a name of ``components.dataset_spec.METRICS``).
        direction: ``maximize`` or ``minimize``.
        production: The version in production, as it served during the experiment.
        candidate: The candidate, likewise.
        elapsed_seconds: Time since the experiment started.
        task: ``binary_classification`` or ``regression``.

    Returns:
        The decision: ``continue``, ``promote`` or ``roll_back``, its reason and statistics
        (each arm's rows, metric and variance, the improvement, the likelihood ratio and its log,
        its threshold, the p-value bound ``min(1, 1/ratio)``, the guards).
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    classification = task == "binary_classification"
    statistics: dict[str, Any] = {
        "metric": metric, "direction": direction, "alpha": rules.alpha, "min_effect": rules.min_effect,
        "threshold": 1 / rules.alpha, "elapsed_seconds": round(float(elapsed_seconds), 3),
        "arms": {}, "improvement": None, "variance": None, "likelihood_ratio": None, "log_likelihood_ratio": None,
        "p_value": None}
    for role, arm in (("production", production), ("candidate", candidate)):
        statistics["arms"][role] = {"version": arm.version, "labelled_rows": int(len(arm.labels)),
                                    "requests": int(arm.requests), "errors": int(arm.errors),
                                    "p99_latency_ms": _p99(arm.latencies_ms), "metric_value": None,
                                    "variance": None}
    guards = guard_violations(rules, production, candidate)
    statistics["guards"] = guards
    if guards:
        return Decision(ROLL_BACK, "guard: " + "; ".join(guards), statistics)
    enough = all(_enough_rows(rules, arm, classification) for arm in (production, candidate))
    if enough:
        values = {}
        for role, arm in (("production", production), ("candidate", candidate)):
            value, variance = metric_with_variance(metric, arm.labels, arm.scores)
            statistics["arms"][role].update(metric_value=value, variance=variance)
            values[role] = (value, variance)
        sign = 1.0 if direction == "maximize" else -1.0
        improvement = sign * (values["candidate"][0] - values["production"][0])
        variance = values["candidate"][1] + values["production"][1]
        if math.isfinite(improvement) and math.isfinite(variance) and variance > 0:
            log_ratio = float(mixture_log_likelihood_ratio(improvement, variance, rules.min_effect))
            ratio = math.exp(min(log_ratio, 700.0))  # 1e304 at most: a JSON number
            statistics.update(improvement=improvement, variance=variance, likelihood_ratio=ratio,
                              log_likelihood_ratio=log_ratio, p_value=min(1.0, math.exp(-log_ratio)))
            if log_ratio >= math.log(1 / rules.alpha):
                better = improvement > 0
                return Decision(PROMOTE if better else ROLL_BACK,
                                f"the candidate's {metric} is {'better' if better else 'worse'} than production's "
                                f"by {abs(improvement):.4g} (likelihood ratio {ratio:.3g} >= {1 / rules.alpha:g})",
                                statistics)
    smaller = min(len(production.labels), len(candidate.labels))
    if elapsed_seconds >= rules.max_duration_seconds:
        return Decision(ROLL_BACK, f"no significant difference within the maximum duration "
                                   f"({rules.max_duration_seconds:g} s): production stays", statistics)
    if rules.max_labelled_rows and smaller >= rules.max_labelled_rows:
        return Decision(ROLL_BACK, f"no significant difference within {rules.max_labelled_rows:,} labelled rows "
                                   "per arm: production stays", statistics)
    if not enough:
        return Decision(CONTINUE, f"waiting for labelled rows: {len(production.labels):,} (production) and "
                                  f"{len(candidate.labels):,} (candidate) of {rules.min_labelled_rows:,} each"
                                  + (f", {rules.min_class_rows} of each class" if classification else ""),
                        statistics)
    return Decision(CONTINUE, f"no significant difference yet (likelihood ratio "
                              f"{statistics['likelihood_ratio'] or 0:.3g} < {1 / rules.alpha:g})", statistics)
