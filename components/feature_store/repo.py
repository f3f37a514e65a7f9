"""The feature repository: its configuration, and Feast definitions of a dataset spec's feature views.

One definition serves training and serving: each feature view of the spec (entities, features,
ttl) over its feed's offline files, one Parquet file per span. Training reads it with Feast's
point-in-time join, serving from the online store through Feast's feature server.

Every entity is a join key, not only the event time: Feast's online store keeps one row per
entity key (the latest), so a row that needs the reading of its own hour (a flight and the weather of
its hour, in the flights example) declares the hour as an entity (``hour_of``).

A repository is a folder with a ``feature_store.yaml``. The embedded default (written when the
folder has none): the registry and a SQLite online store in the folder, the offline files under
``offline/<view>``. On a cluster the folder is mounted from the ConfigMap ``ct-feature-store``
(manifests/components/feature-store): Redis online store, registry and offline files on S3.
"""

from __future__ import annotations

import datetime
import os

from components.kfp_io import ComponentError
from components.s3_settings import endpoint_url

PROJECT = "kfp_ct"
CONFIG_FILE = "feature_store.yaml"
#: Where the offline files are: ``FEATURE_OFFLINE_URI`` (cluster: s3://bucket/prefix), else
#: ``<repository>/offline``; one folder per feature view below it.
OFFLINE_URI_ENV = "FEATURE_OFFLINE_URI"
#: Column of the event time Feast needs: the feed's event time (local clock, written as if it
#: were UTC: rows and readings use the same convention, so the join and the keys agree).
TIMESTAMP = "observed_at"

_EMBEDDED_CONFIG = f"""# The embedded feature store (written by components/feature_store/repo.py): no service to start.
project: {PROJECT}
provider: local
registry:
  path: registry.db
  # Written aside and renamed: the feature server refreshes it while steps write (atomic_registry.py).
  registry_store_type: components.feature_store.atomic_registry.AtomicFileRegistryStore
online_store:
  # Feast's SQLite store, its writes batched (batched_sqlite.py).
  type: components.feature_store.batched_sqlite.BatchedSqliteOnlineStore
  path: online.db
offline_store:
  type: file
# Feast's local engine handing the store Arrow, not a protobuf per value (arrow_engine.py).
batch_engine:
  type: components.feature_store.arrow_engine.ArrowLocalComputeEngine
entity_key_serialization_version: 3
"""


def ensure_config(repo: str) -> str:
    """Writes the embedded default configuration into ``repo`` unless it has one; returns its path."""
    path = os.path.join(repo, CONFIG_FILE)
    if not os.path.exists(path):
        os.makedirs(repo, exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(_EMBEDDED_CONFIG)
        os.replace(path + ".tmp", path)
    return path


def unset_variables(config_path: str) -> list[str]:
    """The ``${VAR}`` names a repository configuration reads that the environment does not set.

    Feast expands them with ``os.path.expandvars`` (feast 0.67.0, feast/repo_config.py), which leaves an unset
    one as it is: an unset ``REDIS_PASSWORD`` would become the password ``${REDIS_PASSWORD}``.
    """
    import re

    with open(config_path, encoding="utf-8") as handle:
        text = handle.read()
    names = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", text)
    return sorted({a or b for a, b in names} - set(os.environ))


def registry_written(repo: str) -> bool:
    """Whether the repository's registry exists (definitions applied): a feature server can start on it."""
    import yaml

    try:
        with open(os.path.join(repo, CONFIG_FILE), encoding="utf-8") as handle:
            registry = (yaml.safe_load(handle) or {}).get("registry")
    except (OSError, yaml.YAMLError):
        return False
    path = registry.get("path") if isinstance(registry, dict) else registry
    if not isinstance(path, str) or "://" in path:
        return False
    return os.path.exists(path if os.path.isabs(path) else os.path.join(repo, path))


def offline_uri(repo: str, view: str) -> str:
    """The folder (or s3:// prefix) of a feature view's offline Parquet files."""
    root = os.environ.get(OFFLINE_URI_ENV) or os.path.join(os.path.abspath(repo), "offline")
    return f"{root.rstrip('/')}/{view}"


def open_store(repo: str, spec):
    """Returns Feast's ``FeatureStore`` on the repository, with the spec's views applied (idempotent)."""
    import logging

    from feast import FeatureStore

    # Feast warns about its own experimental features on every call; our logs name what we do.
    logging.getLogger("feast").setLevel(logging.ERROR)
    endpoint = os.environ.get("S3_ENDPOINT")
    if endpoint:  # a registry on S3 is read with boto3, which takes the endpoint from here
        os.environ.setdefault("FEAST_S3_ENDPOINT_URL", endpoint_url(endpoint))
    missing = unset_variables(ensure_config(repo))
    if missing:
        raise ComponentError(f"{os.path.join(repo, CONFIG_FILE)} reads {', '.join(missing)} from the environment, "
                             "which does not set it (Feast would use the text '${...}' itself); on a cluster it "
                             "comes from the Secret ct-feature-store-credentials (fill it with kubectl patch)")
    store = FeatureStore(repo_path=repo)
    store.apply(definitions(repo, spec))
    return store


#: Feast's type of a feature by the spec's column type (numbers as Float64: a span may lack a
#: reading, and the model takes numbers as floats).
FEAST_TYPES = {"float64": "Float64", "int64": "Float64", "bool": "Float64", "string": "String"}


def definitions(repo: str, spec) -> list:
    """The entities and feature views of a spec, each view over its offline files."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType, types

    entities = {}
    views = []
    for view in spec.feature_views:
        for entity in view.entities:
            entities.setdefault(entity["name"], Entity(
                name=entity["name"], join_keys=[entity["name"]], value_type=ValueType.STRING,
                description=f"a join key of the feature view {view.name}"))
        offline = offline_uri(repo, view.name)
        endpoint = os.environ.get("S3_ENDPOINT") if offline.startswith("s3://") else None
        source = FileSource(name=f"{view.name}_source", path=offline, timestamp_field=TIMESTAMP,
                            s3_endpoint_override=endpoint_url(endpoint) if endpoint else None,
                            description=f"the {view.feed} feed, one file per span")
        columns = spec.columns(view.feed)
        views.append(FeatureView(
            name=view.name, entities=[entities[e["name"]] for e in view.entities], online=True, source=source,
            ttl=datetime.timedelta(seconds=view.ttl_seconds) if view.ttl_seconds else None,
            schema=[Field(name=name, dtype=getattr(types, FEAST_TYPES[columns[name]])) for name in view.features],
            description=f"{', '.join(view.features)} of the {view.feed} feed"))
    return [*entities.values(), *views]


def feature_refs(view) -> list[str]:
    """``view:feature`` references of a view's features, in its order."""
    return [f"{view.name}:{name}" for name in view.features]
