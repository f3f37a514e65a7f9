"""Program of the train image: ``python -m components.train --executor-input JSON``."""

import json
import sys

from components.kfp_io import Executor, run_component
from components.train.train import lookup_block, save, save_reference, serving_samples, train

#: Hyperparameters the pipeline takes as parameters (the spec's ``model.pipeline_parameters`` says which apply).
PIPELINE_HYPERPARAMETERS = ("learning_rate", "max_iter", "max_leaf_nodes", "l2_regularization")


def _run(executor: Executor) -> None:
    import pandas as pd

    spec = executor.dataset_spec()
    # The pipeline's hyperparameter parameters override the spec's where the spec lists them.
    given = {name: executor.param(name) for name in PIPELINE_HYPERPARAMETERS}
    hyperparameters = {**spec.model.get("hyperparameters", {})}
    for name in spec.model.get("pipeline_parameters", []):
        if given.get(name) is not None:
            hyperparameters[name] = type(hyperparameters[name])(given[name])
    train_frame = pd.read_parquet(executor.input_path("train_data"))
    eval_frame = pd.read_parquet(executor.input_path("eval_data"))
    print(f"[train] fitting {spec.model['estimator']} on {len(train_frame):,} rows with {hyperparameters}",
          flush=True)
    pipeline, metrics = train(train_frame, eval_frame, spec, hyperparameters)
    spans = executor.input_metadata("train_data").get("spans", [])
    lookup = lookup_block(train_frame, spec)
    save(pipeline, executor.output_path("model"), spec, {"hyperparameters": hyperparameters, "train_spans": spans,
                                                         "dataset": spec.name, "dataset_spec_digest": spec.digest(),
                                                         **({"lookup": lookup} if lookup else {})})
    save_reference(train_frame, executor.output_path("model"), spec)
    executor.set_metadata("model", {"hyperparameters": hyperparameters, "train_spans": spans,
                                    "framework": "scikit-learn", "estimator": spec.model["estimator"],
                                    "task": spec.task})
    executor.set_metadata("train_metrics", metrics)
    with open(executor.output_path("serving_samples"), "w", encoding="utf-8") as handle:
        json.dump(serving_samples(pipeline, eval_frame, spec), handle)
    name = spec.metric["primary"]
    print(f"[train] train {name} {metrics[f'train_{name}']:.4f}, eval {name} {metrics[f'eval_{name}']:.4f}",
          flush=True)


if __name__ == "__main__":
    sys.exit(run_component("train", _run))
