"""Regenerates the curated schema ``schema/flights.pbtxt`` from landed spans.

The schema is kept in git and reviewed like code; this script documents every
deliberate choice made on top of TFDV's inferred schema, so that re-curating
after a source change is one command:
``python -m components.validate_data.curate_schema var/source/flights``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from components.validate_data.validation import CURATED_SCHEMA

#: Minimum share of rows in which a column must be present, per column; the
#: others must always be present. Chosen below the worst month of 2013.
MIN_FRACTION = {
    "dep_time": 0.85, "dep_delay": 0.85, "arr_time": 0.85, "arr_delay": 0.85, "air_time": 0.85,
    "tailnum": 0.95,
    "temp": 0.9, "dewp": 0.9, "humid": 0.9, "wind_speed": 0.9, "precip": 0.9, "visib": 0.9,
    "wind_dir": 0.85, "pressure": 0.7,
}
#: Share of values that must fall inside a categorical domain (1.0 = any unknown value is an anomaly).
MIN_DOMAIN_MASS = {"carrier": 1.0, "origin": 1.0, "dest": 0.99}
#: Integer ranges.
INT_RANGES = {"month": (1, 12), "day": (1, 31), "hour": (0, 23), "minute": (0, 59)}
#: Drift comparators: Jensen-Shannon for numeric features, L-infinity for categorical ones.
#: Thresholds are placeholders here; the pipeline sets them from its parameters.
JS_DRIFT = ["dep_delay", "arr_delay", "distance", "temp", "wind_speed", "precip", "visib"]
LINF_DRIFT = ["carrier", "origin", "dest"]
#: Columns with too many values for a domain (free text).
NO_DOMAIN = ["tailnum"]


def curate(statistics):
    """Infers a schema from statistics and applies the curation rules above."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.infer_schema(statistics, max_string_domain_size=200)
    for feature in schema.feature:
        name = feature.name
        feature.ClearField("shape")
        feature.value_count.min = 1
        feature.value_count.max = 1
        feature.presence.min_fraction = MIN_FRACTION.get(name, 1.0)
        if name in NO_DOMAIN:
            feature.ClearField("domain")
        if name in MIN_DOMAIN_MASS:
            feature.distribution_constraints.min_domain_mass = MIN_DOMAIN_MASS[name]
        if name in INT_RANGES:
            feature.int_domain.min, feature.int_domain.max = INT_RANGES[name]
        if name in JS_DRIFT:
            feature.drift_comparator.jensen_shannon_divergence.threshold = 0.1
        if name in LINF_DRIFT:
            feature.drift_comparator.infinity_norm.threshold = 0.1
    for domain in list(schema.string_domain):
        if domain.name in NO_DOMAIN:
            schema.string_domain.remove(domain)
    schema.dataset_constraints.min_examples_count = 1
    return schema


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: curate the schema from all spans of a source folder."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    from components.extract.source import LocalSource

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", help="local source folder with landed spans")
    parser.add_argument("--output", default=CURATED_SCHEMA)
    args = parser.parse_args(argv)
    source = LocalSource(args.source)
    frames = [pd.read_parquet(os.path.join(args.source, span, "flights.parquet")) for span in source.spans()]
    statistics = tfdv.generate_statistics_from_dataframe(pd.concat(frames, ignore_index=True))
    tfdv.write_schema_text(curate(statistics), args.output)
    print(f"wrote {args.output} from {len(frames)} spans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
