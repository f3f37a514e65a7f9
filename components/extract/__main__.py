"""Program of the extract image: ``python -m components.extract --executor-input JSON``."""

import sys

from components.extract.extract import extract_spans
from components.kfp_io import Executor, run_component
from components.spans import window_spans


def _run(executor: Executor) -> None:
    spec = executor.dataset_spec()
    metadata = extract_spans(
        source_uri=executor.param("source_uri"),
        spans=window_spans(executor.param("train_spans"), executor.param("test_span"), spec.granularity),
        output_path=executor.output_path("dataset"),
        spec=spec,
    )
    executor.set_metadata("dataset", metadata)


if __name__ == "__main__":
    sys.exit(run_component("extract", _run))
