"""KFP interface of join_features: the extracted spans in; the same rows with their feature views' features out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit), S3, and the feature store's repository and Redis.
POD = PodSettings(cpu=("500m", "1"), memory=("1Gi", "4Gi"), s3=True, feature_store=True,
                  # Feast's file offline store: its module imports dask.dataframe (0.6 s) on the first open.
                  preload=("feast", "feast.infra.offline_stores.dask", "pandas", "pyarrow.parquet"))


@dsl.container_component
def join_features(dataset: dsl.Input[dsl.Dataset], dataset_spec: str, source_uri: str, feature_repo: str,
                  joined: dsl.Output[dsl.Dataset]):
    """Joins the spec's feature views to every row, point-in-time, through Feast.

    Each view's feed, landed with the spans, is brought into the feature store's offline files
    first (only new or changed spans), so the join reads what materialization serves.

    Args:
        dataset: The extracted spans, one Parquet file per span.
        dataset_spec: The dataset spec (canonical JSON): without a feature view the spans pass through.
        source_uri: The span source whose feeds fill the offline store.
        feature_repo: The Feast repository (folder with ``feature_store.yaml``; the embedded
            default is written when it has none).
        joined: The same spans with the views' features; metadata as extracted, plus the
            feature views, their features and the rows left without a reading.
    """
    return program_spec("feature", "join_features")
