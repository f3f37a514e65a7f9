"""Program of the validate_model image: ``python -m components.validate_model --executor-input JSON``."""

import json
import sys

from components.kfp_io import Executor, run_component
from components.validate_model.validate_model import judge


def _run(executor: Executor) -> None:
    with open(executor.input_path("evaluation"), encoding="utf-8") as handle:
        evaluation = json.load(handle)
    blessed, reasons = judge(evaluation["candidate"], evaluation.get("baseline"),
                             float(executor.param("min_auc")), float(executor.param("max_auc_drop")))
    decision = {"blessed": blessed, "reasons": reasons,
                "candidate_auc": evaluation["candidate"]["auc"],
                "baseline_auc": (evaluation.get("baseline") or {}).get("auc"),
                "baseline_version": evaluation.get("baseline_version")}
    with open(executor.output_path("blessing"), "w", encoding="utf-8") as handle:
        json.dump(decision, handle, indent=2)
    executor.set_metadata("blessing", decision)
    executor.set_parameter("blessed", blessed)
    print(f"[validate_model] {'BLESSED' if blessed else 'NOT BLESSED'}", flush=True)
    for reason in reasons:
        print(f"[validate_model]   {reason}", flush=True)


if __name__ == "__main__":
    sys.exit(run_component("validate_model", _run))
