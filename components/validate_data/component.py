"""KFP interface of validate_data: dataset in; statistics, schema, anomalies and reports out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit).
POD = PodSettings(cpu=("1", "2"), memory=("2Gi", "8Gi"),
                  preload=("tensorflow_data_validation", "pandas", "pyarrow.parquet"))


@dsl.container_component
def validate_data(
    dataset: dsl.Input[dsl.Dataset],
    dataset_spec: str,
    schema_uri: str,
    drift_js_threshold: float,
    drift_linf_threshold: float,
    min_rows_fraction: str,
    max_rows_fraction: str,
    max_label_rate_change: str,
    max_missing_rate_change: str,
    beam_pipeline_args: str,
    statistics: dsl.Output[dsl.Artifact],
    schema: dsl.Output[dsl.Artifact],
    anomalies: dsl.Output[dsl.Artifact],
    report: dsl.Output[dsl.HTML],
    statistics_view: dsl.Output[dsl.HTML],
):
    """TFDV statistics per span; fails on schema and span anomalies, reports drift between spans.

    Args:
        dataset: The extracted dataset.
        dataset_spec: The dataset spec (canonical JSON): curated schema, label rule, span limits, value checks.
        schema_uri: Schema (pbtxt) to validate against; empty for the spec's curated schema (inferred when none).
        drift_js_threshold: Jensen-Shannon divergence above which a numeric feature drifted.
        drift_linf_threshold: L-infinity distance above which a categorical feature drifted.
        min_rows_fraction: A span with fewer rows than this times the previous span's is an anomaly
            ("": the spec's ``checks.span``).
        max_rows_fraction: A span with more rows than this times the previous span's is an anomaly ("": the spec's).
        max_label_rate_change: Largest allowed change of the positive label's share against the previous span
            ("": the spec's).
        max_missing_rate_change: Largest allowed change of a feature's missing share against the previous span
            ("": the spec's).
        beam_pipeline_args: Empty: statistics in process. Otherwise Beam pipeline arguments, and the
            statistics run as a Beam pipeline on that runner (``--runner=FlinkRunner ...``).
        statistics: One TFDV statistics file per span.
        schema: The schema used (inferred only when none exists).
        anomalies: JSON with schema anomalies per span and drift measurements.
        report: HTML view of anomalies and drift.
        statistics_view: Each feature's distribution per span side by side, with drift and anomaly
            marks (self-contained HTML: no script, no external resource).
    """
    return program_spec("data", "validate_data")
