"""Simulated experiments with a known truth: how often the rule promotes, and how many rows it takes.

``python -m components.experiment.simulate --effects 0,0.01,0.02 --experiments 1000`` prints, per
true effect (candidate minus production on the primary metric, in its units), the share of
experiments that promoted, rolled back and ran out, and the median labelled rows per arm to a
decision. Every experiment goes through ``decision.decide`` itself, looking after every
``--look-every`` labelled rows, as the monitor looks whenever ground truth arrives.

Scores follow the binormal model for a classification (negatives ``N(0, 1)``, positives
``N(d, 1)``, AUC ``Phi(d / sqrt 2)``) and normal errors for a regression (RMSE = their sd).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from statistics import NormalDist
from typing import Optional

import numpy as np

from components.experiment.decision import CONTINUE, PROMOTE, ROLL_BACK, Arm, ExperimentRules, decide


@dataclass
class SimulatedOutcome:
    """What the rule did over many simulated experiments of one true effect."""

    effect: float
    experiments: int
    promoted: int
    rolled_back: int
    undecided: int
    median_rows_to_decision: Optional[float]

    @property
    def promote_rate(self) -> float:
        """Share of experiments that promoted the candidate."""
        return self.promoted / self.experiments


def _arm_draws(rng, task: str, metric_value: float, positive_rate: float, rows: int):
    if task == "regression":
        labels = rng.normal(0.0, 1.0, rows)
        return labels, labels + rng.normal(0.0, metric_value, rows)
    separation = math.sqrt(2) * NormalDist().inv_cdf(metric_value)
    labels = (rng.random(rows) < positive_rate).astype("float64")
    return labels, rng.normal(0.0, 1.0, rows) + separation * labels


def simulate(rules: ExperimentRules, effect: float, experiments: int = 1000, task: str = "binary_classification",
             production_metric: Optional[float] = None, positive_rate: float = 0.2, candidate_share: float = 0.5,
             look_every: int = 200, seed: int = 0) -> SimulatedOutcome:
    """Runs simulated experiments through ``decide`` and counts their outcomes.

    Args:
        rules: The rules under test (``max_labelled_rows`` bounds each experiment; it must be set).
        effect: The candidate's true improvement on the primary metric (AUC for a classification, RMSE
            reduction for a regression; negative: a worse candidate).
        experiments: How many experiments.
        task: ``binary_classification`` (AUC) or ``regression`` (RMSE).
        production_metric: Production's true AUC (default 0.7) or RMSE (default 1.0).
        positive_rate: A classification's share of positive labels.
        candidate_share: The candidate's share of the traffic.
        look_every: Labelled rows (both arms together) between two looks.
        seed: The random generator's seed.
    """
    if not rules.max_labelled_rows:
        raise ValueError("simulated experiments need rules.max_labelled_rows to end")
    regression = task == "regression"
    metric, direction = ("rmse", "minimize") if regression else ("auc", "maximize")
    production_metric = production_metric or (1.0 if regression else 0.7)
    candidate_metric = production_metric - effect if regression else production_metric + effect
    if not (candidate_metric > 0 if regression else 0.5 <= candidate_metric < 1):
        raise ValueError(f"a production {metric} of {production_metric} and an effect of {effect} "
                         f"give the candidate an impossible {metric} of {candidate_metric}")
    rng = np.random.default_rng(seed)
    total = int(math.ceil(rules.max_labelled_rows / min(candidate_share, 1 - candidate_share))) + look_every
    counts = {PROMOTE: 0, ROLL_BACK: 0, CONTINUE: 0}
    rows_to_decision = []
    for _ in range(experiments):
        to_candidate = rng.random(total) < candidate_share
        labels_p, scores_p = _arm_draws(rng, task, production_metric, positive_rate, int((~to_candidate).sum()))
        labels_c, scores_c = _arm_draws(rng, task, candidate_metric, positive_rate, int(to_candidate.sum()))
        served_c = np.cumsum(to_candidate)
        outcome = CONTINUE
        for seen in range(look_every, total + 1, look_every):
            n_c = int(served_c[seen - 1])
            n_p = seen - n_c
            decision = decide(rules, metric, direction, Arm("production", labels_p[:n_p], scores_p[:n_p]),
                              Arm("candidate", labels_c[:n_c], scores_c[:n_c]), elapsed_seconds=0.0, task=task)
            if decision.outcome != CONTINUE:
                outcome = decision.outcome
                log_ratio = decision.statistics["log_likelihood_ratio"]
                if log_ratio is not None and log_ratio >= math.log(1 / rules.alpha):
                    rows_to_decision.append(min(n_p, n_c))
                else:
                    outcome = CONTINUE  # ran out of rows: undecided, production stays
                break
        counts[outcome] += 1
    return SimulatedOutcome(effect, experiments, counts[PROMOTE], counts[ROLL_BACK], counts[CONTINUE],
                            float(np.median(rows_to_decision)) if rows_to_decision else None)


def main(argv: Optional[list[str]] = None) -> int:
    """Prints the outcome table for the effects asked."""
    parser = argparse.ArgumentParser(prog="python -m components.experiment.simulate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["binary_classification", "regression"], default="binary_classification")
    parser.add_argument("--effects", default="-0.01,0,0.005,0.01,0.02",
                        help="true improvements of the candidate, comma-separated (AUC, or RMSE reduction)")
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--min-effect", type=float, default=0.01)
    parser.add_argument("--min-labelled-rows", type=int, default=200)
    parser.add_argument("--max-labelled-rows", type=int, default=20_000, help="per arm: the experiment's end")
    parser.add_argument("--production-metric", type=float, help="production's true AUC (0.7) or RMSE (1.0)")
    parser.add_argument("--positive-rate", type=float, default=0.2)
    parser.add_argument("--candidate-share", type=float, default=0.5)
    parser.add_argument("--look-every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rules = ExperimentRules(alpha=args.alpha, min_effect=args.min_effect, min_labelled_rows=args.min_labelled_rows,
                            max_labelled_rows=args.max_labelled_rows)
    print(f"{args.experiments} simulated experiments per effect, {args.task}, alpha {args.alpha}, "
          f"min_effect {args.min_effect}, {args.min_labelled_rows:,} to {args.max_labelled_rows:,} labelled rows "
          f"per arm, candidate share {args.candidate_share:.0%}, a look every {args.look_every} rows")
    print(f"{'effect':>8} {'promoted':>9} {'rolled back':>12} {'undecided':>10} {'median rows/arm':>16}")
    for text in args.effects.split(","):
        outcome = simulate(rules, float(text), args.experiments, args.task, args.production_metric,
                           args.positive_rate, args.candidate_share, args.look_every, args.seed)
        median = f"{outcome.median_rows_to_decision:,.0f}" if outcome.median_rows_to_decision else "-"
        print(f"{outcome.effect:>8g} {outcome.promoted / outcome.experiments:>9.1%} "
              f"{outcome.rolled_back / outcome.experiments:>12.1%} {outcome.undecided / outcome.experiments:>10.1%} "
              f"{median:>16}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
