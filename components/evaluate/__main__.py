"""Program of the evaluate image: ``python -m components.evaluate --executor-input JSON``."""

import json
import sys

from components import model_files
from components.dataset_spec import metric_label
from components.evaluate.evaluate import confusion_matrix, evaluate, roc_curve_points, score
from components.kfp_io import Executor, run_component


def _run(executor: Executor) -> None:
    import pandas as pd

    spec = executor.dataset_spec()
    test_frame = pd.read_parquet(executor.input_path("test_data"))
    candidate = model_files.load_model(executor.input_path("model"))
    baseline_dir = executor.input_path("baseline")
    baseline = model_files.load_model(baseline_dir) if model_files.has_model(baseline_dir) else None
    print(f"[evaluate] {len(test_frame):,} test rows; baseline: "
          f"{executor.input_metadata('baseline').get('version') if baseline is not None else 'none'}", flush=True)

    result = evaluate(candidate, test_frame, spec, baseline)
    result["test_spans"] = executor.input_metadata("test_data").get("spans", [])
    result["baseline_version"] = executor.input_metadata("baseline").get("version") if baseline is not None else None
    with open(executor.output_path("evaluation"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    overall = {k: v for k, v in result["candidate"].items() if k != "slices"}
    executor.set_metadata("metrics", overall)
    metric = spec.metric["primary"]
    executor.set_metadata("evaluation", {"metric": metric, f"candidate_{metric}": overall[metric],
                                         f"baseline_{metric}": (result["baseline"] or {}).get(metric)})

    if spec.task == "binary_classification":
        labels = test_frame[spec.label].to_numpy()
        scores = score(candidate, test_frame, spec)
        class_names = spec.raw.get("evaluation", {}).get("class_names", ["0", "1"])
        executor.set_metadata("classification_metrics", {
            "confidenceMetrics": roc_curve_points(labels, scores),
            "confusionMatrix": confusion_matrix(labels, scores, class_names),
        })
    name = metric_label(metric)
    line = f"[evaluate] candidate {name} {overall[metric]:.4f}"
    if result["baseline"]:
        line += f", baseline {name} {result['baseline'][metric]:.4f} on the same test span"
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(run_component("evaluate", _run))
