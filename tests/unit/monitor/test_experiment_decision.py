"""The online experiment's decision rule: its statistics, its guards, and its error rate on simulated experiments."""

import math

import numpy as np
import pytest
from sklearn.metrics import mean_squared_error, roc_auc_score

from components.experiment.decision import (
    CONTINUE,
    PROMOTE,
    ROLL_BACK,
    Arm,
    ExperimentRules,
    auc_with_variance,
    decide,
    metric_with_variance,
    mixture_log_likelihood_ratio,
)
from components.experiment.simulate import simulate
from components.model_metrics import metric_value


def _delong_by_pairs(labels, scores):
    """DeLong's estimate written from its definition: every positive against every negative."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    psi = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return v10.mean(), v10.var(ddof=1) / len(positive) + v01.var(ddof=1) / len(negative)


@pytest.mark.parametrize("rows", [10, 300, 2000])
def test_auc_and_its_delong_variance_equal_the_pairwise_definition_with_ties(rows):
    rng = np.random.default_rng(rows)
    labels = (rng.random(rows) < 0.3).astype(int)
    labels[:2], labels[2:4] = 1, 0
    scores = np.round(rng.normal(size=rows) + labels, 1)  # rounded: many ties, as a tree ensemble gives
    auc, variance = auc_with_variance(labels, scores)
    expected_auc, expected_variance = _delong_by_pairs(labels, scores)
    assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert auc == pytest.approx(expected_auc, abs=1e-12)
    assert variance == pytest.approx(expected_variance, rel=1e-9)


def test_auc_of_many_experiments_at_once_equals_each_alone():
    rng = np.random.default_rng(7)
    labels, scores = rng.random((6, 400)) < 0.2, np.round(rng.normal(size=(6, 400)), 2)
    aucs, variances = auc_with_variance(labels, scores)
    for row in range(6):
        assert (aucs[row], variances[row]) == pytest.approx(auc_with_variance(labels[row], scores[row]))


def test_auc_of_a_single_class_is_nan():
    auc, variance = auc_with_variance(np.zeros(50), np.linspace(0, 1, 50))
    assert math.isnan(auc) and math.isnan(variance)


def test_metric_variances_match_the_spread_of_the_metric_over_repeated_samples():
    """The plug-in variance of each kind of metric against the metric's own variance over 400 samples."""
    rng = np.random.default_rng(3)

    def draw(task):
        if task == "regression":
            labels = rng.normal(size=1000)
            return labels, labels + rng.normal(0, 2.0, size=1000)
        labels = (rng.random(1000) < 0.3).astype(float)
        return labels, 1 / (1 + np.exp(-(rng.normal(size=1000) + 1.5 * labels - 1)))

    for metric, task in [("auc", "c"), ("log_loss", "c"), ("accuracy", "c"), ("rmse", "regression"),
                         ("mae", "regression")]:
        samples = [draw(task) for _ in range(400)]
        values = [metric_with_variance(metric, labels, scores)[0] for labels, scores in samples]
        estimated = np.median([metric_with_variance(metric, labels, scores)[1] for labels, scores in samples[:40]])
        assert estimated == pytest.approx(np.var(values, ddof=1), rel=0.25), metric
    labels, scores = draw("regression")
    assert metric_with_variance("rmse", labels, scores)[0] == pytest.approx(
        math.sqrt(mean_squared_error(labels, scores)))


def test_f1_uses_a_bootstrap_variance_of_the_right_size():
    rng = np.random.default_rng(5)
    samples = []
    for _ in range(200):
        labels = (rng.random(800) < 0.3).astype(float)
        samples.append((labels, np.clip(0.5 * labels + rng.normal(0.25, 0.25, size=800), 0, 1)))
    values = [metric_value("f1", labels, scores) for labels, scores in samples]
    estimated = np.median([metric_with_variance("f1", *sample)[1] for sample in samples[:5]])
    assert estimated == pytest.approx(np.var(values, ddof=1), rel=0.4)


def test_the_mixture_likelihood_ratio_grows_with_evidence_and_is_symmetric():
    ratio = mixture_log_likelihood_ratio
    assert ratio(0.0, 1e-4, 0.02) < 0
    assert ratio(0.05, 1e-4, 0.02) > ratio(0.03, 1e-4, 0.02) > 0
    assert ratio(0.05, 1e-5, 0.02) > ratio(0.05, 1e-4, 0.02)
    assert ratio(-0.04, 1e-4, 0.02) == ratio(0.04, 1e-4, 0.02)
    # Johari et al.'s closed form, at one point.
    v, tau2, d = 1e-4, 0.02 ** 2, 0.03
    assert math.exp(ratio(d, v, 0.02)) == pytest.approx(math.sqrt(v / (v + tau2)) * math.exp(
        tau2 * d * d / (2 * v * (v + tau2))))
    assert math.isfinite(ratio(0.5, 1e-7, 0.02))  # overwhelming evidence stays a number


def _arm(version, labels, scores, requests=1000, errors=0, latency_ms=2.0):
    return Arm(version, np.asarray(labels, dtype=float), np.asarray(scores, dtype=float), requests, errors,
               np.full(requests, latency_ms))


def _classified(rng, rows, separation):
    labels = (rng.random(rows) < 0.3).astype(float)
    return labels, rng.normal(size=rows) + separation * labels


def test_a_clearly_better_candidate_is_promoted_and_a_clearly_worse_one_rolled_back():
    rng = np.random.default_rng(11)
    rules = ExperimentRules(min_effect=0.02)
    weak, strong = _classified(rng, 3000, 0.6), _classified(rng, 3000, 1.4)
    decision = decide(rules, "auc", "maximize", _arm("v1", *weak), _arm("v2", *strong), 3600)
    assert decision.outcome == PROMOTE, decision.reason
    assert decision.statistics["improvement"] > 0.1
    assert decision.statistics["likelihood_ratio"] >= 20 and decision.statistics["p_value"] <= 0.05
    assert decision.statistics["arms"]["candidate"]["version"] == "v2"
    decision = decide(rules, "auc", "maximize", _arm("v1", *strong), _arm("v2", *weak), 3600)
    assert decision.outcome == ROLL_BACK and "worse" in decision.reason


def test_a_metric_to_minimize_promotes_the_candidate_with_the_lower_value():
    rng = np.random.default_rng(12)
    labels = rng.normal(size=2000)
    production, candidate = labels + rng.normal(0, 2.0, 2000), labels + rng.normal(0, 1.0, 2000)
    rules = ExperimentRules(min_effect=0.5)
    decision = decide(rules, "rmse", "minimize", _arm("v1", labels, production), _arm("v2", labels, candidate), 60,
                      task="regression")
    assert decision.outcome == PROMOTE and decision.statistics["improvement"] == pytest.approx(1.0, abs=0.15)
    assert decide(rules, "rmse", "minimize", _arm("v1", labels, candidate), _arm("v2", labels, production), 60,
                  task="regression").outcome == ROLL_BACK


def test_too_few_labelled_rows_or_of_one_class_waits_then_the_maximum_duration_rolls_back():
    rng = np.random.default_rng(13)
    rules = ExperimentRules(min_effect=0.02, min_labelled_rows=500, min_class_rows=50, max_duration_seconds=100)
    weak, strong = _classified(rng, 400, 0.2), _classified(rng, 400, 2.0)
    decision = decide(rules, "auc", "maximize", _arm("v1", *weak), _arm("v2", *strong), 10)
    assert decision.outcome == CONTINUE and "waiting for labelled rows" in decision.reason
    assert decision.statistics["likelihood_ratio"] is None
    labels = np.zeros(600)
    labels[:10] = 1  # 10 positives: fewer than min_class_rows
    assert decide(rules, "auc", "maximize", _arm("v1", labels, rng.random(600)), _arm("v2", labels, rng.random(600)),
                  10).outcome == CONTINUE
    decision = decide(rules, "auc", "maximize", _arm("v1", *weak), _arm("v2", *strong), 100)
    assert decision.outcome == ROLL_BACK and "maximum duration" in decision.reason


def test_guards_roll_back_a_candidate_with_errors_or_slow_answers_whatever_its_metric():
    rng = np.random.default_rng(14)
    rules = ExperimentRules(min_effect=0.02)
    weak, strong = _classified(rng, 3000, 0.6), _classified(rng, 3000, 1.4)
    erring = decide(rules, "auc", "maximize", _arm("v1", *weak, errors=5), _arm("v2", *strong, errors=40), 60)
    assert erring.outcome == ROLL_BACK and erring.reason.startswith("guard: error rate 4.00%")
    slow = decide(rules, "auc", "maximize", _arm("v1", *weak, latency_ms=2.0), _arm("v2", *strong, latency_ms=20.0), 60)
    assert slow.outcome == ROLL_BACK and "p99 latency 20.0 ms" in slow.reason
    # Within the slack, and with too few requests to judge, the guards stay quiet.
    within_slack = decide(rules, "auc", "maximize", _arm("v1", *weak), _arm("v2", *strong, latency_ms=7.0), 60)
    assert within_slack.outcome == PROMOTE
    assert decide(rules, "auc", "maximize", _arm("v1", *weak, requests=10), _arm("v2", *strong, requests=10, errors=9),
                  60).outcome == PROMOTE


def test_rules_refuse_nonsense_naming_it():
    with pytest.raises(ValueError, match="alpha must be in"):
        ExperimentRules(alpha=0.7)
    with pytest.raises(ValueError, match="unknown maximum_rows"):
        ExperimentRules.from_dict({"maximum_rows": 5})
    assert ExperimentRules.from_dict({"alpha": 0.01}).alpha == 0.01


@pytest.mark.parametrize("effect", [0.0, -0.02])
def test_over_1000_simulated_experiments_a_candidate_no_better_is_promoted_less_often_than_alpha(effect):
    """The acceptance of issue 27: the rule looks after every 400 labelled rows, up to 4,000 per arm."""
    rules = ExperimentRules(alpha=0.05, min_effect=0.02, max_labelled_rows=4000)
    outcome = simulate(rules, effect, experiments=1000, look_every=400, seed=27)
    assert outcome.experiments == 1000
    assert outcome.promote_rate < rules.alpha, outcome


def test_simulated_experiments_with_a_real_improvement_are_promoted():
    """The same rule has power: the test above cannot pass by never promoting."""
    rules = ExperimentRules(alpha=0.05, min_effect=0.02, max_labelled_rows=4000)
    outcome = simulate(rules, 0.08, experiments=200, look_every=400, seed=28)
    assert outcome.promote_rate > 0.9 and outcome.rolled_back == 0, outcome
    assert outcome.median_rows_to_decision < 4000
