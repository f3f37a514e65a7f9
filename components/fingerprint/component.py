"""KFP interface of fingerprint: window in; data version (span ids + content hash) out."""

from kfp import dsl

from components.images import image


@dsl.container_component
def fingerprint(source_uri: str, train_spans: str, test_span: str, data_version: dsl.OutputPath(str)):
    """Computes the window's data version; never cached, so that it enters extract's cache key.

    Args:
        source_uri: Local folder or ``s3://bucket/prefix`` with one folder per span.
        train_spans: Training spans.
        test_span: The test span.
        data_version: ``<span ids>@sha256:<hash of the span files>``.
    """
    return dsl.ContainerSpec(
        image=image("data"),
        command=["python", "-m", "components.fingerprint"],
        args=["--executor-input", "{{$}}"],
    )
