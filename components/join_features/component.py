"""KFP interface of join_features: flights in; flights with the store's weather features out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit), S3, and the feature store's repository and Redis.
POD = PodSettings(cpu=("500m", "1"), memory=("1Gi", "4Gi"), s3=True, feature_store=True)


@dsl.container_component
def join_features(dataset: dsl.Input[dsl.Dataset], dataset_spec: str, source_uri: str, feature_repo: str,
                  joined: dsl.Output[dsl.Dataset]):
    """Joins the weather feature view to every flight, point-in-time, through Feast.

    The weather readings landed with the spans are brought into the feature store's offline
    files first (only new or changed spans), so the join reads what materialization serves.

    Args:
        dataset: The extracted flights, one Parquet file per span.
        dataset_spec: The dataset spec (canonical JSON): without a feature view the spans pass through.
        source_uri: The span source whose weather files feed the offline store.
        feature_repo: The Feast repository (folder with ``feature_store.yaml``; the embedded
            default is written when it has none).
        joined: The same spans with the weather features; metadata as extracted, plus the
            feature view, its features and the flights left without a reading.
    """
    return program_spec("feature", "join_features")
