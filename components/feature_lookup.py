"""Online lookups of a model's feature views through Feast's feature server (HTTP; standard library only).

The model server and the monitor cannot import the Feast SDK (their locks pin protobuf and
pandas versions Feast does not accept), so they ask Feast's own feature server:
``POST /get-online-features`` with the entity columns, as feast 0.67.0 serves it
(``feast/feature_server.py``: ``get_online_features``; the answer is
``{"metadata": {"feature_names": [...]}, "results": [{"values", "statuses", ...}, ...]}``,
one result per entity key and feature, in ``feature_names`` order).
"""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any, Optional
from urllib.parse import urlparse

from components.feature_views import derivation_columns, derive_keys


class FeatureServerError(RuntimeError):
    """The feature server could not be reached or gave an answer that is not Feast's."""


def key_columns(block: dict) -> list[str]:
    """The columns a request must carry for a model's lookups (``model.json``'s ``lookup``), defaults aside."""
    defaults = block.get("defaults") or {}
    names = [name for view in block["views"] for entity in view["entities"]
             for name in derivation_columns(entity["row"])]
    return [name for name in dict.fromkeys(names) if name not in defaults]


class FeatureLookup:
    """A client of Feast's feature server: one kept-alive connection per thread."""

    def __init__(self, url: str, timeout: float = 2.0):
        """Args: url: the feature server, e.g. ``http://127.0.0.1:6566``; timeout: seconds per lookup."""
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"feature server URL must be http(s)://host[:port], got {url!r}")
        self.url = url.rstrip("/")
        self._scheme, self._host = parsed.scheme, parsed.hostname
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            connection = self._local.connection = kind(self._host, self._port, timeout=self.timeout)
        return connection

    def _post(self, body: bytes) -> dict:
        for attempt in (1, 2):  # a kept-alive connection the server has closed fails once
            connection = self._connection()
            try:
                connection.request("POST", "/get-online-features", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise FeatureServerError(f"feature server {self.url} cannot be reached: {error}") from None
                continue
            if response.status != 200:
                raise FeatureServerError(f"feature server {self.url} answered {response.status}: {data[:300]!r}")
            try:
                return json.loads(data)
            except ValueError:
                raise FeatureServerError(f"feature server {self.url} answered something that is not JSON") from None
        raise AssertionError("unreachable")

    def lookup(self, view: str, features: list[str],
               keys: dict[str, list[str]]) -> tuple[dict[str, list[Optional[object]]], list[bool]]:
        """A view's features for each row's keys, and whether the store holds that key.

        Keys are asked once each, whatever the number of rows sharing them.

        Args:
            view: The feature view.
            features: Its features to return.
            keys: Entity name -> one key per row.

        Returns:
            (feature name -> one value per row, None when missing; found per row).

        Raises:
            FeatureServerError: The server cannot be reached or its answer is not Feast's.
        """
        names = list(keys)
        rows = list(zip(*(keys[name] for name in names)))
        distinct = list(dict.fromkeys(rows))
        body = json.dumps({"features": [f"{view}:{name}" for name in features],
                           "entities": {name: [key[i] for key in distinct] for i, name in enumerate(names)}}).encode()
        answer = self._post(body)
        try:
            results = dict(zip(answer["metadata"]["feature_names"], answer["results"]))
            by_feature = {name: results[name] for name in features}
        except (KeyError, TypeError):
            raise FeatureServerError(f"feature server {self.url} gave no {view} features: "
                                     f"{json.dumps(answer)[:300]}") from None
        position = {key: index for index, key in enumerate(distinct)}
        at = [position[key] for key in rows]
        found_distinct = [any(by_feature[name]["statuses"][i] != "NOT_FOUND" for name in by_feature)
                          for i in range(len(distinct))]
        values = {name: [result["values"][i] for i in at] for name, result in by_feature.items()}
        return values, [found_distinct[i] for i in at]


def _key_text(name: str, key, derivation: dict, columns, row: int, defaults: dict) -> str:
    """A key for a message: its value, or the values it could not be formed from."""
    if key is not None:
        return f"{name} {key!r}"
    parts = []
    for column in derivation_columns(derivation):
        value = columns[column][row] if column in columns else defaults.get(column)
        parts.append(f"{column}={value.item() if hasattr(value, 'item') else value!r}")
    return f"{name} (none: {', '.join(parts)} do not form one)"


def look_up_rows(lookup: FeatureLookup, block: dict, columns, rows: int) -> tuple[dict[str, list], list[bool], Any]:
    """Every feature of a model's views for each row, its keys derived as training derived them.

    Args:
        lookup: The feature server's client.
        block: The model's ``lookup`` block (``model.json``): views, their entities' row derivations,
            defaults of key columns a caller does not send.
        columns: Column name -> one value per row.
        rows: The number of rows.

    Returns:
        (feature -> one value per row, None when missing; found per row (by every view);
        a function giving a row's keys as text, for a message about that row).

    Raises:
        FeatureServerError: The server cannot be reached or its answer is not Feast's.
    """
    defaults = block.get("defaults") or {}
    values: dict[str, list] = {}
    found = [True] * rows
    derived = []
    for view in block["views"]:
        keys = {entity["name"]: derive_keys(columns, entity["row"], rows, defaults) for entity in view["entities"]}
        # A row whose key cannot be formed (a missing or impossible value) is not asked: not found.
        complete = [row for row in range(rows) if all(keys[name][row] is not None for name in keys)]
        got, held = lookup.lookup(view["name"], view["features"],
                                  {name: [keys[name][row] for row in complete] for name in keys}) \
            if complete else ({name: [] for name in view["features"]}, [])
        for name in view["features"]:
            values[name] = [None] * rows
            for position, row in enumerate(complete):
                values[name][row] = got[name][position]
        held_by_row = dict(zip(complete, held))
        found = [found[row] and held_by_row.get(row, False) for row in range(rows)]
        derived.append((view, keys))

    def describe(row: int) -> str:
        return "; ".join(", ".join(_key_text(name, keys[name][row], entity["row"], columns, row, defaults)
                                   for name, entity in zip(keys, view["entities"])) for view, keys in derived)

    return values, found, describe
