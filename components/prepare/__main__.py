"""Program of the prepare image: ``python -m components.prepare --executor-input JSON``."""

import os
import sys

from components.kfp_io import Executor, run_component
from components.prepare.prepare import add_label, describe, split
from components.spans import span_file


def _run(executor: Executor) -> None:
    import pandas as pd

    spec = executor.dataset_spec()
    folder = executor.input_path("dataset")
    spans = executor.input_metadata("dataset")["spans"]
    raw = pd.concat([pd.read_parquet(os.path.join(folder, span_file(span))) for span in spans], ignore_index=True)
    labelled = add_label(raw, spec)
    print(f"[prepare] {len(raw):,} rows, {len(raw) - len(labelled):,} without a label "
          f"({', '.join(spec.label_columns)} missing) dropped", flush=True)
    parts = split(labelled, spec, executor.param("test_span"), float(executor.param("eval_fraction")))
    for name, frame in zip(("train_data", "eval_data", "test_data"), parts):
        frame.to_parquet(executor.output_path(name), index=False)
        executor.set_metadata(name, describe(frame, spec))
        print(f"[prepare] {name}: {len(frame):,} rows", flush=True)


if __name__ == "__main__":
    sys.exit(run_component("prepare", _run))
