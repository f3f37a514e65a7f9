"""Program of the validate_model image: ``python -m components.validate_model --executor-input JSON``."""

import json
import sys

from components.kfp_io import ComponentError, Executor, run_component
from components.validate_model.validate_model import judge


def _run(executor: Executor) -> None:
    spec = executor.dataset_spec()
    with open(executor.input_path("evaluation"), encoding="utf-8") as handle:
        evaluation = json.load(handle)
    metric = spec.metric["primary"]
    threshold = _override(executor, "metric_threshold", spec.metric["threshold"])
    max_change = _override(executor, "metric_max_change", spec.metric["max_change"])
    blessed, reasons = judge(evaluation["candidate"], evaluation.get("baseline"), metric, spec.metric_direction,
                             threshold, max_change)
    decision = {"blessed": blessed, "reasons": reasons, "metric": metric, "direction": spec.metric_direction,
                "threshold": threshold, "max_change": max_change,
                f"candidate_{metric}": evaluation["candidate"][metric],
                f"baseline_{metric}": (evaluation.get("baseline") or {}).get(metric),
                "baseline_version": evaluation.get("baseline_version")}
    with open(executor.output_path("blessing"), "w", encoding="utf-8") as handle:
        json.dump(decision, handle, indent=2)
    executor.set_metadata("blessing", decision)
    executor.set_parameter("blessed", blessed)
    print(f"[validate_model] {'BLESSED' if blessed else 'NOT BLESSED'}", flush=True)
    for reason in reasons:
        print(f"[validate_model]   {reason}", flush=True)


def _override(executor: Executor, name: str, default: float) -> float:
    """A threshold parameter: empty means the spec's value."""
    value = executor.param(name)
    if value in (None, ""):
        return float(default)
    try:
        return float(value)
    except ValueError:
        raise ComponentError(f"{name}={value!r} is not a number (empty: the spec's value)") from None


if __name__ == "__main__":
    sys.exit(run_component("validate_model", _run))
