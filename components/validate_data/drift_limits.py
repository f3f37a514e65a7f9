"""``make drift-limits``: each feature's fatal drift limit, calibrated on a dataset's landed spans.

Drift against the previous span is reported above the reporting thresholds; past a feature's
fatal limit (the spec's ``checks.fatal_drift``) it stops the run. A fatal limit must let the
data's natural drift through (seasons, a new route) and stop a unit or scale change whose values
stay inside the feature's domain. So it is measured, not guessed: for every span against the one
before it, TFDV's drift measure of each feature (Jensen-Shannon divergence for numbers, L-infinity
distance for strings) on all rows, and on seeded samples (a pipeline run on a slice of the data
sees noisier measures). A feature's limit is ``MARGIN`` times its largest natural drift, at least
``FLOOR``; a feature whose limit would pass ``CEILING`` gets none: it drifts by nature nearly as
far as the measure goes (a span's own month, a mostly-zero rainfall), and no limit could tell a
unit change from that.

Prints a table (largest natural drift, where, limit, how far below it) and the spec's
``[checks.fatal_drift]`` block, for a person to review and commit. Usage:
``python -m components.validate_data.drift_limits --spec SPEC [--source FOLDER] [--samples 0.1]``.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Optional

#: A limit is this many times the largest natural drift ...
MARGIN = 2.0
#: ... and at least this (the sampling noise of a small span stays under it) ...
FLOOR = 0.1
#: ... or none, when it would pass this (both measures lie in [0, 1]).
CEILING = 0.9
#: Samples measured besides all rows, and the seeds of each.
SAMPLE_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class NaturalDrift:
    """The largest drift of one feature between consecutive spans, and where it was measured."""

    feature: str
    measure: str
    value: float
    span: str
    previous_span: str
    rows: str


def largest_drift(frames: dict[str, object], schema, features: list[str],
                  samples: tuple[float, ...] = ()) -> dict[str, NaturalDrift]:
    """Each feature's largest drift between consecutive spans, over all rows and seeded samples.

    Args:
        frames: Span id -> the span's rows (as validation sees them: feature views joined).
        schema: The curated schema (the feature types choose the measure).
        features: The features to measure.
        samples: Row fractions measured besides all rows (``SAMPLE_SEEDS`` seeds each).

    Returns:
        Feature -> its largest natural drift; features the schema does not know are left out.
    """
    from components.validate_data.validation import drift_between_spans, span_statistics, with_comparators

    comparing = with_comparators(schema, {name: 0.0 for name in features})
    runs = [("all rows", frames)]
    for fraction in samples:
        for seed in SAMPLE_SEEDS:
            runs.append((f"{fraction:.0%} sample, seed {seed}",
                         {span: frame.sample(frac=fraction, random_state=seed) for span, frame in frames.items()}))
    largest: dict[str, NaturalDrift] = {}
    for index, (rows, sampled) in enumerate(runs, start=1):
        print(f"[drift-limits] {index}/{len(runs)}: {rows}, {len(sampled)} spans", flush=True)
        for row in drift_between_spans(span_statistics(sampled), comparing):
            known = largest.get(row["feature"])
            if known is None or row["value"] > known.value:
                largest[row["feature"]] = NaturalDrift(row["feature"], row["measure"], row["value"], row["span"],
                                                       row["previous_span"], rows)
    return largest


def fatal_limit(natural: float, margin: float = MARGIN, floor: float = FLOOR,
                ceiling: float = CEILING) -> Optional[float]:
    """The fatal limit for a feature's largest natural drift (rounded up to 0.01), or None past ``ceiling``."""
    limit = math.ceil(max(margin * natural, floor) * 100 - 1e-9) / 100
    return None if limit > ceiling else limit


def report(largest: dict[str, NaturalDrift], features: list[str], spec_name: str, source: str,
           samples: tuple[float, ...] = ()) -> str:
    """The table and the ``[checks.fatal_drift]`` block to paste into the spec."""
    lines = [f"{'feature':<24} {'measure':<26} {'largest':>8}  {'where':<42} {'limit':>6}  natural / limit"]
    block = ["[checks.fatal_drift]",
             f"# make drift-limits on {spec_name} ({source}{''.join(f', {f:.0%} samples' for f in samples)}): "
             f"{MARGIN:g}x each feature's largest drift between consecutive spans, at least {FLOOR:g};",
             f"# none where that passes {CEILING:g} (the feature drifts by nature nearly as far as the measure goes)."]
    for name in features:
        if name not in largest:
            lines.append(f"{name:<24} not in the schema: no drift measured")
            continue
        found = largest[name]
        limit = fatal_limit(found.value)
        where = f"{found.span} vs {found.previous_span}, {found.rows}"
        if limit is None:
            lines.append(f"{name:<24} {found.measure:<26} {found.value:>8.4f}  {where:<42} {'none':>6}  "
                         "drifts by nature")
            block.append(f"# {name}: none (largest natural drift {found.value:.3f})")
        else:
            lines.append(f"{name:<24} {found.measure:<26} {found.value:>8.4f}  {where:<42} {limit:>6.2f}  "
                         f"{found.value / limit:.2f}")
            block.append(f"{name} = {limit:.2f}{'':<{max(1, 18 - len(name))}}# largest natural drift {found.value:.3f}")
    return "\n".join(lines) + "\n\n" + "\n".join(block) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: measure a spec's landed spans (landing them first if needed) and print the limits."""
    from components.dataset_spec import DatasetSpec, SpecError
    from components.paths import REPO_ROOT
    from components.validate_data.infer_schema import read_landed
    from components.validate_data.validation import load_or_infer_schema

    parser = argparse.ArgumentParser(prog="python -m components.validate_data.drift_limits", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, help="the dataset spec (spec.toml)")
    parser.add_argument("--source", help="folder of landed spans (default var/source/<dataset name>)")
    parser.add_argument("--samples", default="",
                        help="row fractions measured besides all rows, comma-separated (e.g. 0.1: the slice the "
                             "end-to-end tests run on)")
    args = parser.parse_args(argv)
    try:
        spec = DatasetSpec.load(args.spec)
        samples = tuple(float(value) for value in args.samples.split(",") if value.strip())
    except SpecError as error:
        parser.error(str(error))
    except ValueError:
        parser.error(f"--samples {args.samples!r}: fractions such as 0.1,0.25")
    if any(not 0 < fraction < 1 for fraction in samples):
        parser.error(f"--samples {args.samples!r}: each fraction lies between 0 and 1")
    if spec.schema_text is None:
        parser.error(f"{args.spec} names no curated schema ([schema] file): write one with make schema first")
    source = args.source or os.path.join(REPO_ROOT, "var", "source", spec.name)
    if not os.path.isdir(source) and spec.landing:
        print(f"Landing the spans of {spec.name} in {source} ({spec.landing}) ...", flush=True)
        subprocess.run([sys.executable, "-m", spec.landing, source], check=True, cwd=REPO_ROOT)
    frames = read_landed(source, spec)
    if len(frames) < 2:
        raise SystemExit(f"error: {source} holds {len(frames)} span(s) of {spec.name}: drift needs two or more")
    schema, _ = load_or_infer_schema(None, None, spec.schema_text)
    largest = largest_drift(frames, schema, spec.features, samples)
    shown = os.path.relpath(source, REPO_ROOT) if os.path.abspath(source).startswith(REPO_ROOT + os.sep) else source
    print(report(largest, spec.features, spec.name, shown, samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
