"""Program of the infra_validate image: ``python -m components.infra_validate --executor-input JSON``."""

import json
import sys

from components.infra_validate.infra_validate import check_serving
from components.kfp_io import Executor, run_component


def _run(executor: Executor) -> None:
    with open(executor.input_path("serving_samples"), encoding="utf-8") as handle:
        samples = json.load(handle)
    result = check_serving(executor.input_path("model"), samples,
                           max_p99_ms=float(executor.param("max_p99_ms")),
                           requests=int(executor.param("requests")),
                           fork_server=True)  # this step's process: see control.start_process
    with open(executor.output_path("infra_blessing"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    executor.set_metadata("infra_blessing", result)
    print(f"[infra_validate] {'PASSED' if result['blessed'] else 'FAILED'}", flush=True)
    for reason in result["reasons"]:
        print(f"[infra_validate]   {reason}", flush=True)


if __name__ == "__main__":
    sys.exit(run_component("infra_validate", _run))
