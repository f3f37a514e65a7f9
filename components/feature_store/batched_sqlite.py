"""Feast's SQLite online store with batched writes: one ``executemany`` per batch, not a statement per value.

Feast 0.67.0's ``SqliteOnlineStore.online_write_batch`` (feast/infra/online_stores/sqlite.py) runs
one ``INSERT ... ON CONFLICT DO UPDATE`` per entity and feature: 210k statements for a year of
hourly readings of eight features at three keys. This store builds the same rows, with Feast's own helpers, and
hands them to SQLite in one ``executemany`` inside the same transaction: the same table contents
(a test compares them with Feast's store's, row for row). Reads, table creation and teardown are
Feast's. Configurations Feast's writer handles that this one does not (vector columns, the
OpenAI-compatible ``value_num`` column) go to Feast's writer unchanged.
"""

from __future__ import annotations

from typing import Any

from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import extract_text_and_num
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig, _quote_id, _table_id
from feast.utils import to_naive_utc
from pydantic import StrictStr

TYPE = "components.feature_store.batched_sqlite.BatchedSqliteOnlineStore"


class BatchedSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """``SqliteOnlineStoreConfig`` under this store's type (Feast finds a store's config by ``<class>Config``)."""

    type: StrictStr = TYPE


class BatchedSqliteOnlineStore(SqliteOnlineStore):
    """``SqliteOnlineStore`` whose ``online_write_batch`` writes a batch with one ``executemany``."""

    def online_write_batch(self, config, table, data, progress) -> None:
        """Writes the batch as Feast's store does (same rows, same upsert), in one ``executemany``."""
        if config.online_store.vector_enabled or getattr(config.online_store, "enable_openai_compatible_store", False):
            return super().online_write_batch(config, table, data, progress)
        conn = self._get_conn(config)
        table_name = _table_id(config.project, table, config.registry.enable_online_feature_view_versioning)
        columns = ["entity_key", "feature_name", "value", "value_text", "event_ts", "created_ts"]
        upsert = (f"INSERT INTO {_quote_id(table_name)} ({', '.join(columns)}) "
                  f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
                  + ", ".join(f"{c} = excluded.{c}" for c in columns[2:]) + ";")
        rows: list[tuple[Any, ...]] = []
        for entity_key, values, timestamp, created_ts in data:
            key = serialize_entity_key(entity_key,
                                       entity_key_serialization_version=config.entity_key_serialization_version)
            timestamp = to_naive_utc(timestamp)
            created_ts = to_naive_utc(created_ts) if created_ts is not None else None
            for feature_name, value in values.items():
                value_text, _ = extract_text_and_num(value, False)
                rows.append((key, feature_name, value.SerializeToString(), value_text, timestamp, created_ts))
        # In primary-key order SQLite appends to its index instead of seeking for every row (210k rows
        # of random keys: 1.24 -> 0.66 s; Feast's batch, grouped by entity already: 1.05 -> 0.91 s with
        # the sort). The sort is stable: of two writes of one key in a batch the later still lands last.
        rows.sort(key=lambda row: (row[0], row[1]))
        with conn:
            conn.executemany(upsert, rows)
        if progress:
            progress(len(data))
