"""Online lookups of the weather features through Feast's feature server (HTTP; standard library only).

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
from typing import Optional
from urllib.parse import urlparse

from components import dataset

#: What a flight's weather is looked up by; the year comes from the model (``model.json``'s ``lookup``).
KEY_FEATURES = ("origin", "month", "day", "sched_dep_time")


class FeatureServerError(RuntimeError):
    """The feature server could not be reached or gave an answer that is not Feast's."""


def flight_hour(year: int, month: float, day: float, sched_dep_time: float) -> str:
    """The ``weather_hour`` key of a flight: its scheduled departure's local hour."""
    return dataset.weather_hour(int(year), int(month), int(day), int(sched_dep_time) // 100)


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
        self._features = [f"{dataset.WEATHER_VIEW}:{name}" for name in dataset.WEATHER_FEATURES]

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

    def lookup(self, origins: list[str], hours: list[str]) -> tuple[dict[str, list[Optional[float]]], list[bool]]:
        """The weather features of each (origin, hour), and whether the store holds that key.

        Keys are asked once each, whatever the number of rows sharing them.

        Returns:
            (feature name -> one value per row, None when missing; found per row).

        Raises:
            FeatureServerError: The server cannot be reached or its answer is not Feast's.
        """
        distinct = list(dict.fromkeys(zip(origins, hours)))
        body = json.dumps({"features": self._features,
                           "entities": {"origin": [o for o, _ in distinct],
                                        dataset.WEATHER_HOUR: [h for _, h in distinct]}}).encode()
        answer = self._post(body)
        try:
            names = answer["metadata"]["feature_names"]
            results = dict(zip(names, answer["results"]))
            by_feature = {name: results[name] for name in dataset.WEATHER_FEATURES}
        except (KeyError, TypeError):
            raise FeatureServerError(f"feature server {self.url} gave no weather features: "
                                     f"{json.dumps(answer)[:300]}") from None
        position = {key: index for index, key in enumerate(distinct)}
        rows = [position[key] for key in zip(origins, hours)]
        found_distinct = [any(by_feature[name]["statuses"][i] != "NOT_FOUND" for name in by_feature)
                          for i in range(len(distinct))]
        values = {name: [result["values"][i] for i in rows] for name, result in by_feature.items()}
        return values, [found_distinct[i] for i in rows]
