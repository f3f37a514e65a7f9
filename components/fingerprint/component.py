"""KFP interface of fingerprint: window in; data version (span ids + content hash) out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit), and the S3 endpoint and credentials.
POD = PodSettings(cpu=("100m", "500m"), memory=("256Mi", "1Gi"), s3=True)


@dsl.container_component
def fingerprint(source_uri: str, train_spans: str, test_span: str, dataset_spec: str, registry_uri: str,
                model_name: str,
                data_version: dsl.OutputPath(str), production_version: dsl.OutputPath(str)):
    """Versions of what a run depends on besides its parameters; never cached, so they enter the cache keys.

    Args:
        source_uri: Local folder or ``s3://bucket/prefix`` with one folder per span.
        train_spans: Training spans.
        test_span: The test span.
        dataset_spec: The dataset spec (canonical JSON): granularity, feed files; its digest is in the data version.
        registry_uri: Root of the model registry (a folder or ``s3://bucket/prefix``).
        model_name: The model's name in the registry.
        data_version: ``<span ids>@sha256:<hash of the span files>`` (extract's cache key).
        production_version: ``<version>@<deployed at>`` of the model in production, or ``none``
            (resolve_baseline's cache key: it reruns after every deployment or rollback).
    """
    return program_spec("data", "fingerprint")
