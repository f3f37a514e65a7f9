"""Model validation logic: bless a candidate only if it is good, and no worse than production.

The primary metric, its direction and its thresholds come from the dataset spec (``[metric]``):
AUC must reach its threshold and may drop by at most the change threshold; RMSE must stay at or
under its threshold and may rise by at most the change threshold.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from components.dataset_spec import metric_label


def judge(candidate: dict[str, Any], baseline: Optional[dict[str, Any]], metric: str, direction: str,
          threshold: float, max_change: float) -> tuple[bool, list[str]]:
    """Decides whether the candidate is blessed, and says why.

    Value threshold: the candidate's test metric must reach ``threshold`` (at least it when the
    metric is maximized, at most it when minimized). Change threshold: when a baseline (the
    production model) exists, the candidate may be worse than it on the same test span by at
    most ``max_change``. The first model is judged by the value threshold alone.

    Returns:
        ``(blessed, reasons)``: one reason per check, passed or failed.
    """
    name = metric_label(metric)
    value = candidate.get(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False, [f"candidate {name} could not be computed (for AUC: the test span has a single class)"]
    maximize = direction == "maximize"
    reasons, blessed = [], True
    good = value >= threshold if maximize else value <= threshold
    sign = (">=" if good else "<") if maximize else ("<=" if good else ">")
    blessed = blessed and good
    reasons.append(f"value: {name} {value:.4f} {sign} {threshold:.4f} (threshold): {'passed' if good else 'failed'}")
    if baseline is None:
        reasons.append("change: no model in production, judged by value thresholds alone")
    else:
        worse_by = (baseline[metric] - value) if maximize else (value - baseline[metric])
        verdict = "passed" if worse_by <= max_change else "failed"
        blessed = blessed and worse_by <= max_change
        what = "drop" if maximize else "rise"
        reasons.append(f"change: {name} {value:.4f} vs production {baseline[metric]:.4f} on the same test span "
                       f"({what} {(-worse_by if maximize else worse_by):+.4f}, allowed {max_change:.4f}): {verdict}")
    return blessed, reasons
