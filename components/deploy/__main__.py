"""Program of the deploy image: ``python -m components.deploy --executor-input JSON``."""

import json
import sys

from components.deploy.deploy import deploy
from components.kfp_io import Executor, run_component


def _read_json(path: str):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _run(executor: Executor) -> None:
    evaluation = _read_json(executor.input_path("evaluation"))
    blessing = _read_json(executor.input_path("blessing"))
    release = {
        "metrics": {k: v for k, v in evaluation["candidate"].items() if k != "slices"},
        "baseline_metrics": {k: v for k, v in (evaluation.get("baseline") or {}).items() if k != "slices"},
        "baseline_version": evaluation.get("baseline_version"),
        "test_spans": evaluation.get("test_spans"),
        "blessing": blessing,
        "model_metadata": executor.input_metadata("model"),
        "run_id": executor.param("run_id") or None,
    }
    deployed, details = deploy(
        model_dir=executor.input_path("model"),
        blessing=blessing,
        infra_blessing=_read_json(executor.input_path("infra_blessing")),
        registry_uri=executor.param("registry_uri"),
        model_name=executor.param("model_name"),
        release=release,
        serving_state_dir=executor.param("serving_state_dir"),
        serving_port=int(executor.param("serving_port")),
    )
    with open(executor.output_path("deployment"), "w", encoding="utf-8") as handle:
        json.dump({"deployed": deployed, **details}, handle, indent=2)
    if not deployed:
        executor.set_metadata("deployment", {"deployed": False, "reasons": details["reasons"]})
        print(f"[deploy] NOT deployed: {'; '.join(details['reasons'])}", flush=True)
        return
    pointer, serving = details["pointer"], details["serving"]
    executor.set_metadata("deployment", {"deployed": True, "version": pointer["version"],
                                         "model_name": executor.param("model_name"),
                                         "model_dir": pointer["model_dir"], "serving_url": serving["predict_url"]})
    print(f"[deploy] {pointer['version']} published to {pointer['model_dir']}", flush=True)
    print(f"[deploy] serving at {serving['predict_url']}", flush=True)


if __name__ == "__main__":
    sys.exit(run_component("deploy", _run))
