"""``make schema``: a starting curated schema for a dataset spec, inferred from its landed spans (SchemaGen).

TFDV infers types and domains from the statistics of every landed span together; then each
constraint is set from what the spans hold, with a margin, so that the spans the schema was
inferred from pass it and a real departure does not:

- presence: each feature in at least the smallest share of rows any span had, less a margin;
- numeric domains: the smallest and largest value seen, widened by a share of their range
  (review them: a physical domain, what the value can mean, is better than what was seen);
- string domains: every value seen when there are few (at most ``MAX_STRING_DOMAIN``), all of a
  span's values required in it when every span's were; free text (more values) has no domain;
- drift comparators on every feature (Jensen-Shannon for numbers, L-infinity for categories),
  with placeholder thresholds the pipeline overrides from its parameters.

The file is written for a person to review and commit (the spec's ``schema.file``), with a
comment per feature saying what was seen. Usage:
``python -m components.validate_data.infer_schema --spec SPEC [--source FOLDER] [--output FILE]``.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import subprocess
import sys
from typing import Optional

#: A categorical column with more distinct values than this is free text: no domain.
MAX_STRING_DOMAIN = 100
#: Margins: presence lowered by this share, numeric domains widened by this share of their range.
PRESENCE_MARGIN = 0.1
RANGE_MARGIN = 0.1


def read_landed(source: str, spec) -> dict[str, object]:
    """Span id -> the main feed's rows with the feature views' features (``sources.read_joined_spans``).

    Raises:
        SystemExit: The source holds no span of the spec.
    """
    from components.sources import read_joined_spans

    try:
        return read_joined_spans(source, spec)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def infer(frames: dict[str, object], spec):
    """Infers the schema from all spans and sets every constraint from what the spans hold.

    Returns:
        ``(schema, notes)``: the Schema proto and, per feature, what was seen (for the file's comments).
    """
    import pandas as pd
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components.validate_data.validation import SpanLimits

    everything = pd.concat(frames.values(), ignore_index=True)
    schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(everything),
                               max_string_domain_size=MAX_STRING_DOMAIN)
    notes = {}
    for feature in schema.feature:
        name = feature.name
        feature.ClearField("shape")
        feature.value_count.min = feature.value_count.max = 1
        presence = min(float(frame[name].notna().mean()) if len(frame) else 1.0 for frame in frames.values())
        feature.presence.min_fraction = 1.0 if presence >= 1.0 else _floor(presence * (1 - PRESENCE_MARGIN), 2)
        if presence < 1.0:
            feature.presence.ClearField("min_count")  # a span may lack it entirely when its fraction allows
        note = f"present in {presence:.3f} of the rows of the sparsest span"
        values = everything[name].dropna()
        if feature.type in (schema_pb2.INT, schema_pb2.FLOAT) and len(values):
            low, high = float(values.min()), float(values.max())
            pad = (high - low) * RANGE_MARGIN
            # A column never seen negative stays non-negative.
            lower = max(0.0, low - pad) if low >= 0 else low - pad
            if feature.type == schema_pb2.INT:
                feature.int_domain.min, feature.int_domain.max = math.floor(lower), math.ceil(high + pad)
            else:
                feature.float_domain.min, feature.float_domain.max = lower, high + pad
            note += f"; seen {low:g} to {high:g}, domain widened by {RANGE_MARGIN:.0%} of that range"
            feature.drift_comparator.jensen_shannon_divergence.threshold = 0.1
        elif feature.HasField("domain"):
            distinct = values.astype(str).nunique()
            mass = _new_value_mass(frames, name)
            feature.distribution_constraints.min_domain_mass = 1.0 if mass >= 1.0 else _floor(mass * 0.98, 2)
            feature.drift_comparator.infinity_norm.threshold = 0.1
            note += (f"; {distinct} values seen, all required in the domain" if mass >= 1.0 else
                     f"; {distinct} values seen; spans brought values their predecessors lacked (at worst "
                     f"{1 - mass:.3f} of a span's rows): {feature.distribution_constraints.min_domain_mass} "
                     "of a span's values must be in the domain")
        elif feature.type == schema_pb2.BYTES:
            note += f"; free text ({values.astype(str).nunique()} values seen): no domain"
        notes[name] = note
    schema.dataset_constraints.min_examples_count = 1
    limits = SpanLimits(**{k: float(v) for k, v in spec.checks.get("span", {}).items()
                           if k in ("min_rows_fraction", "max_rows_fraction")})
    comparator = schema.dataset_constraints.num_examples_drift_comparator
    comparator.min_fraction_threshold = limits.min_rows_fraction
    comparator.max_fraction_threshold = limits.max_rows_fraction
    return schema, notes


def _new_value_mass(frames: dict[str, object], name: str) -> float:
    """The smallest share of a span's values already seen in the spans before it (1.0: no span brought new ones)."""
    seen: set = set()
    worst = 1.0
    for span in sorted(frames):
        values = frames[span][name].dropna().astype(str)
        if seen and len(values):
            worst = min(worst, float(values.isin(seen).mean()))
        seen.update(values.unique())
    return worst


def _floor(value: float, digits: int) -> float:
    scale = 10 ** digits
    return math.floor(value * scale) / scale


def schema_text(schema, notes: dict[str, str], spec, spans: list[str]) -> str:
    """The schema as text, with a header and a comment per feature saying what was seen."""
    from google.protobuf import text_format

    lines = []
    for line in text_format.MessageToString(schema).splitlines():
        lines.append(line)
        if line.startswith('  name: "') and len(lines) > 1 and lines[-2] == "feature {":
            name = line.split('"')[1]
            lines.insert(len(lines) - 2, f"# {name}: {notes.get(name, '')}")
    header = [f"# The curated schema of {spec.name}: inferred by `make schema` from {len(spans)} spans "
              f"({spans[0]} to {spans[-1]}) on {datetime.date.today().isoformat()}.",
              "# A starting point: review each constraint (a physical domain beats what was seen), then commit."]
    return "\n".join(header + lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: infer and write the schema of a spec from its landed spans (landing them first if needed)."""
    from components.dataset_spec import DatasetSpec, SpecError
    from components.paths import REPO_ROOT

    parser = argparse.ArgumentParser(prog="python -m components.validate_data.infer_schema", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, help="the dataset spec (spec.toml)")
    parser.add_argument("--source", help="folder of landed spans (default var/source/<dataset name>)")
    parser.add_argument("--output", help="schema file to write (default: the spec's schema.file, else schema.pbtxt "
                                         "beside the spec)")
    args = parser.parse_args(argv)
    try:
        spec = DatasetSpec.load(args.spec)
    except SpecError as error:
        parser.error(str(error))
    source = args.source or os.path.join(REPO_ROOT, "var", "source", spec.name)
    if not os.path.isdir(source) and spec.landing:
        print(f"Landing the spans of {spec.name} in {source} ({spec.landing}) ...", flush=True)
        subprocess.run([sys.executable, "-m", spec.landing, source], check=True, cwd=REPO_ROOT)
    output = args.output or spec.schema_path or os.path.join(os.path.dirname(os.path.abspath(args.spec)),
                                                             "schema.pbtxt")
    frames = read_landed(source, spec)
    schema, notes = infer(frames, spec)
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(schema_text(schema, notes, spec, sorted(frames)))
    print(f"wrote {output}: {len(schema.feature)} features from {len(frames)} spans of {source}")
    if not spec.schema_path:
        print(f"name it in the spec to use it: [schema] file = \"{os.path.basename(output)}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
