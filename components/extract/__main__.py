"""Program of the extract image: ``python -m components.extract --executor-input JSON``."""

import sys

from components.extract.extract import extract_spans, parse_spans
from components.kfp_io import Executor, run_component


def _run(executor: Executor) -> None:
    spans = parse_spans(executor.param("train_spans")) + parse_spans(executor.param("test_span"))
    metadata = extract_spans(
        source_uri=executor.param("source_uri"),
        spans=sorted(set(spans)),
        output_path=executor.output_path("dataset"),
    )
    executor.set_metadata("dataset", metadata)


if __name__ == "__main__":
    sys.exit(run_component("extract", _run))
