"""KFP interface of extract: spans of a source in, one Parquet dataset out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit), and the S3 endpoint and credentials.
POD = PodSettings(cpu=("500m", "1"), memory=("1Gi", "4Gi"), s3=True,
                  preload=("pandas", "pyarrow.parquet"))


@dsl.container_component
def extract(source_uri: str, train_spans: str, test_span: str, dataset_spec: str, data_version: str,
            dataset: dsl.Output[dsl.Dataset]):
    """Reads the window's spans (train and test) into one dataset with a ``span`` column.

    Args:
        source_uri: Local folder or ``s3://bucket/prefix`` with one folder per span.
        train_spans: Training spans, ``2013-01:2013-03`` or ``2013-01,2013-02``.
        test_span: The span held out for evaluation, e.g. ``2013-04``.
        dataset_spec: The dataset spec (canonical JSON): granularity and the main feed's file and format.
        data_version: The window's data version from fingerprint; part of the cache key,
            so that a changed span is extracted again.
        dataset: Parquet file; metadata holds spans, rows per span and the data hash.
    """
    return program_spec("data", "extract")
