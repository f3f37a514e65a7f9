"""TFDV statistics called directly, on the frames validate_data read in a pipeline run.

``.venvs/data/bin/python tests/benchmarks/tfdv_direct.py DATASET_DIR SPAN[,SPAN...] [--repeat 3]``
prints one JSON line: rows, and the median seconds of ``tfdv.generate_statistics_from_dataframe``
per span (as validate_data calls it) and on all spans in one frame. TFDV is imported and warmed up
first, untimed, as the step's own measurement starts after its imports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    """Measures and prints."""
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset_dir")
    parser.add_argument("spans")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import pandas as pd
    import tensorflow_data_validation as tfdv

    from components.validate_data.validation import read_spans
    from pipelines.examples.flights import dataset

    frames = {span: frame.drop(columns=[dataset.SPAN_COLUMN], errors="ignore").reset_index(drop=True)
              for span, frame in read_spans(args.dataset_dir, args.spans.split(",")).items()}
    whole = pd.concat(frames.values(), ignore_index=True)
    tfdv.generate_statistics_from_dataframe(whole.head(1000))  # warm-up
    per_span, one_frame = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        for frame in frames.values():
            tfdv.generate_statistics_from_dataframe(frame)
        per_span.append(time.perf_counter() - started)
        started = time.perf_counter()
        tfdv.generate_statistics_from_dataframe(whole)
        one_frame.append(time.perf_counter() - started)
    print(json.dumps({"rows": int(len(whole)), "per_span_seconds": round(statistics.median(per_span), 3),
                      "one_frame_seconds": round(statistics.median(one_frame), 3)}))


if __name__ == "__main__":
    main()
