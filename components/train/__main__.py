"""Program of the train image: ``python -m components.train --executor-input JSON``."""

import json
import sys

from components.kfp_io import Executor, run_component
from components.train.train import lookup_block, save, save_reference, serving_samples, train


def _run(executor: Executor) -> None:
    import pandas as pd

    hyperparameters = {
        "learning_rate": float(executor.param("learning_rate")),
        "max_iter": int(executor.param("max_iter")),
        "max_leaf_nodes": int(executor.param("max_leaf_nodes")),
        "l2_regularization": float(executor.param("l2_regularization")),
    }
    train_frame = pd.read_parquet(executor.input_path("train_data"))
    eval_frame = pd.read_parquet(executor.input_path("eval_data"))
    print(f"[train] fitting on {len(train_frame):,} rows with {hyperparameters}", flush=True)
    pipeline, metrics = train(train_frame, eval_frame, hyperparameters)
    spans = executor.input_metadata("train_data").get("spans", [])
    save(pipeline, executor.output_path("model"), {"hyperparameters": hyperparameters, "train_spans": spans,
                                                   "lookup": lookup_block(train_frame)})
    save_reference(train_frame, executor.output_path("model"))
    executor.set_metadata("model", {"hyperparameters": hyperparameters, "train_spans": spans,
                                    "framework": "scikit-learn"})
    executor.set_metadata("train_metrics", metrics)
    with open(executor.output_path("serving_samples"), "w", encoding="utf-8") as handle:
        json.dump(serving_samples(pipeline, eval_frame), handle)
    print(f"[train] train AUC {metrics['train_auc']:.4f}, eval AUC {metrics['eval_auc']:.4f}", flush=True)


if __name__ == "__main__":
    sys.exit(run_component("train", _run))
