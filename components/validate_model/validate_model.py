"""Model validation logic: bless a candidate only if it is good, and no worse than production."""

from __future__ import annotations

import math
from typing import Any, Optional


def judge(candidate: dict[str, Any], baseline: Optional[dict[str, Any]], min_auc: float,
          max_auc_drop: float) -> tuple[bool, list[str]]:
    """Decides whether the candidate is blessed, and says why.

    Value threshold: the candidate's test AUC must reach ``min_auc``. Change
    threshold: when a baseline (the production model) exists, its AUC on the
    same test span may exceed the candidate's by at most ``max_auc_drop``. The
    first model is judged by the value threshold alone.

    Returns:
        ``(blessed, reasons)``: one reason per check, passed or failed.
    """
    reasons = []
    blessed = True
    auc = candidate.get("auc")
    if auc is None or (isinstance(auc, float) and math.isnan(auc)):
        return False, ["candidate AUC could not be computed (test span has a single class)"]
    if auc >= min_auc:
        reasons.append(f"value: AUC {auc:.4f} >= {min_auc:.4f} (min_auc): passed")
    else:
        blessed = False
        reasons.append(f"value: AUC {auc:.4f} < {min_auc:.4f} (min_auc): failed")
    if baseline is None:
        reasons.append("change: no model in production, judged by value thresholds alone")
    else:
        drop = baseline["auc"] - auc
        verdict = "passed" if drop <= max_auc_drop else "failed"
        blessed = blessed and drop <= max_auc_drop
        reasons.append(f"change: AUC {auc:.4f} vs production {baseline['auc']:.4f} on the same test span "
                       f"(drop {drop:+.4f}, allowed {max_auc_drop:.4f}): {verdict}")
    return blessed, reasons
