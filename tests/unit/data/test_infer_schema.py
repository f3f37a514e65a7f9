"""make schema: a starting schema inferred from landed spans passes them, and its constraints come from the data."""

import numpy as np
import pandas as pd

from components.dataset_spec import DatasetSpec
from components.paths import REPO_ROOT
from components.validate_data import infer_schema, validation

TAXI = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/taxi/spec.toml")


def _span(rows, seed, companies):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.uniform(1, 50, rows) for name, kind in TAXI.columns().items()
                          if kind == "float64"})
    for name, kind in TAXI.columns().items():
        if kind == "int64":
            frame[name] = rng.integers(1, 12, rows)
    frame["payment_type"] = rng.choice(["Cash", "Credit Card"], rows)
    frame["company"] = rng.choice(companies, rows)
    frame.loc[frame.index[: rows // 10], "dropoff_latitude"] = np.nan
    return frame


def test_the_inferred_schema_passes_the_spans_it_came_from_with_constraints_from_the_data(tmp_path):
    frames = {"2014-Q1": _span(400, 1, ["A", "B"]), "2014-Q2": _span(400, 2, ["A", "B", "C"]),
              "2014-Q3": _span(400, 3, ["A", "B", "C"])}
    schema, notes = infer_schema.infer(frames, TAXI)
    features = {f.name: f for f in schema.feature}
    assert features["dropoff_latitude"].presence.min_fraction == 0.81  # 0.9 seen, less 10%
    assert features["fare"].presence.min_fraction == 1.0
    assert features["fare"].float_domain.min == 0.0  # never negative: widened down to 0 only
    assert features["fare"].float_domain.max > frames["2014-Q1"]["fare"].max()
    # C arrived in the second span as a third of its rows: the domain mass allows what was seen.
    assert 0.6 < features["company"].distribution_constraints.min_domain_mass < 0.7
    assert features["payment_type"].distribution_constraints.min_domain_mass == 1.0
    assert "free text" not in notes["company"] and "all required" in notes["payment_type"]
    statistics = validation.span_statistics({span: frame.assign(span=span) for span, frame in frames.items()})
    assert validation.schema_anomalies(statistics, schema) == {}
    text = infer_schema.schema_text(schema, notes, TAXI, sorted(frames))
    assert text.startswith("# The curated schema of taxi: inferred by `make schema` from 3 spans (2014-Q1 to 2014-Q3)")
    assert "# fare: present in 1.000 of the rows" in text
    reread, inferred = validation.load_or_infer_schema(None, None, text)
    assert not inferred and len(reread.feature) == len(schema.feature)
