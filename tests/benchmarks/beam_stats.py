"""TFDV statistics in process against Beam's DirectRunner in multi-process mode, 1 to 12 months of 2013.

``.venvs/data/bin/python tests/benchmarks/beam_stats.py SOURCE [--workers 2] [--repeat 1]``
(SOURCE: the landed spans, ``<span>/flights.parquet``) prints one JSON line: per month count the
rows, the seconds and rows/s of both paths (validate_data's in-process call, and
``beam_span_statistics`` with ``--direct_num_workers``), and the crossover: the smallest
window where Beam is faster, or None. Reading the files is timed on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time


def main() -> None:
    """Measures and prints."""
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    import tensorflow_data_validation  # noqa: F401 - imported before timing, as in the step

    from components.beam_statistics import beam_span_statistics
    from components.validate_data.validation import read_spans, span_statistics
    from pipelines.examples.flights import dataset

    spans = sorted(name for name in os.listdir(args.source) if name[:4].isdigit())
    folder = tempfile.mkdtemp(prefix="beam-bench-")
    for span in spans:  # the extracted dataset's layout, pointing at the landed files
        os.symlink(os.path.abspath(os.path.join(args.source, span, "flights.parquet")),
                   os.path.join(folder, dataset.span_file(span)))
    beam_args = [f"--direct_num_workers={args.workers}", "--direct_running_mode=multi_processing"]
    windows = []
    for months in (1, 3, 6, 12):
        chosen = spans[:months]
        local, beam = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            frames = read_spans(folder, chosen)
            span_statistics(frames)
            local.append(time.perf_counter() - started)
            started = time.perf_counter()
            beam_span_statistics(folder, chosen, beam_args)
            beam.append(time.perf_counter() - started)
        rows = sum(len(frame) for frame in frames.values())
        windows.append({"months": months, "rows": rows, "in_process_seconds": round(statistics.median(local), 2),
                        "beam_seconds": round(statistics.median(beam), 2),
                        "in_process_rows_per_second": round(rows / statistics.median(local)),
                        "beam_rows_per_second": round(rows / statistics.median(beam))})
        print(json.dumps(windows[-1]), flush=True)
    crossover = next((w["rows"] for w in windows if w["beam_seconds"] < w["in_process_seconds"]), None)
    print(json.dumps({"workers": args.workers, "windows": windows, "crossover_rows": crossover}))


if __name__ == "__main__":
    main()
