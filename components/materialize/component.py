"""KFP interface of materialize: the feature views' feeds in; the online store up to date out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit), S3, and the feature store's repository and Redis.
POD = PodSettings(cpu=("250m", "1"), memory=("512Mi", "2Gi"), s3=True, feature_store=True,
                  preload=("feast",))


@dsl.container_component
def materialize(dataset_spec: str, source_uri: str, feature_repo: str, serving_target: str, feature_server_url: str,
                features: dsl.Output[dsl.Artifact]):
    """Pushes the feature views' readings not yet in the online store there, after checking them.

    Every span's readings go to the offline store (new or changed ones only); those not yet
    materialized are checked against the curated schema's domains (the serving skew guard's)
    and written to the online store with Feast's ``materialize``. A reading out of its domain
    stops the step and nothing is written: serving keeps the features it had. Locally, it then
    makes sure Feast's feature server answers on ``feature_server_url``.

    Args:
        dataset_spec: The dataset spec (canonical JSON): without a feature view there is nothing to do.
        source_uri: The span source whose feeds fill the store.
        feature_repo: The Feast repository (folder with ``feature_store.yaml``).
        serving_target: ``local``: start the local feature server if none answers; ``kserve``:
            the cluster runs it (manifests/components/feature-store).
        feature_server_url: Where the feature server answers (the model server asks there).
        features: Lineage of the materialization: feature view, features, time range, spans, rows.
    """
    return program_spec("feature", "materialize")
