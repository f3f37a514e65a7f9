"""KFP interface of resolve_baseline: registry in; the production model out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit), and the S3 endpoint and credentials.
POD = PodSettings(cpu=("100m", "500m"), memory=("256Mi", "1Gi"), s3=True,
                  preload=("ml_metadata.metadata_store",))


@dsl.container_component
def resolve_baseline(metadata_uri: str, registry_uri: str, model_name: str, production_version: str,
                     namespace: str, pipeline_name: str, baseline: dsl.Output[dsl.Model]):
    """Finds the model in production, to compare the candidate against on the same test span.

    Cached while ``production_version`` stays the same (fingerprint reads it at the start of each run).

    Args:
        metadata_uri: ML Metadata store (SQLite path, ``mysql://...`` or ``grpc://host:port``);
            empty to read the registry pointer instead.
        registry_uri: Root of the model registry.
        model_name: The model's name in the registry.
        production_version: What identifies production now (the cache key; not otherwise read).
        namespace: Where the model is served: only deployments into it are production here.
        pipeline_name: Only deployments by runs of this pipeline count (ML Metadata's pipeline context).
        baseline: The production model's folder (empty, with ``found: false``, when there is none).
    """
    return program_spec("data", "resolve_baseline")
