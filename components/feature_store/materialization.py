"""Materialization: which readings are new, are they sound, and into the online store with them."""

from __future__ import annotations

import datetime
from typing import Any

from components import dataset
from components.kfp_io import ComponentError


def check_domains(readings, spans_of_rows) -> None:
    """Refuses readings outside the curated schema's domains (what the serving skew guard allows).

    Rare glitches were stored as missing already (``offline.GLITCH_SHARE``): what is left is a broken feed.

    Raises:
        ComponentError: Naming the span, feature, value and domain of the first such reading.
    """
    from components.feature_store.offline import outside_domain
    from components.schema_domains import read_domains

    domains = read_domains(dataset.CURATED_SCHEMA)
    for name in dataset.WEATHER_FEATURES:
        domain = domains.get(name)
        column = readings[name]
        outside = outside_domain(column, domain)
        if outside.any():
            row = outside.to_numpy().nonzero()[0][0]
            raise ComponentError(
                f"weather of span {spans_of_rows[row]}: {name} = {column.iloc[row]} at {readings['origin'].iloc[row]} "
                f"{readings[dataset.WEATHER_HOUR].iloc[row]}: {domain.violation(float(column.iloc[row]))} "
                "(the data validation schema); nothing was materialized, serving keeps the features it had")


def materialize_new(source_uri: str, repo: str) -> dict[str, Any]:
    """Brings the feed into the offline store and the readings not yet online into the online store.

    Returns:
        Lineage metadata: ``feature_view``, ``features``, ``spans`` materialized now, ``start`` and
        ``end`` of their time range (ISO, local hours), ``rows``, ``online_spans`` (all spans online)
        and ``offline_uri``.

    Raises:
        ComponentError: A weather file cannot be read, or a reading is outside its domain.
    """
    from components.feature_store.offline import mark_materialized, read_spans, read_state, sync_weather
    from components.feature_store.repo import TIMESTAMP

    synced = sync_weather(source_uri, repo)
    state = read_state(repo)
    pending = sorted(span for span, digest in state["synced"].items() if state["materialized"].get(span) != digest)
    metadata: dict[str, Any] = {"feature_view": dataset.WEATHER_VIEW, "features": list(dataset.WEATHER_FEATURES),
                                "offline_uri": synced["offline_uri"], "spans": pending, "rows": 0}
    if not pending:
        print(f"[materialize] the online store holds every span's weather already "
              f"({len(state['materialized'])} span(s))", flush=True)
        metadata["online_spans"] = sorted(state["materialized"])
        return metadata
    readings = read_spans(repo, pending)
    spans_of_rows = readings[TIMESTAMP].dt.strftime("%Y-%m").to_numpy()
    check_domains(readings, spans_of_rows)
    from components.feature_store.repo import open_store

    start = readings[TIMESTAMP].min().to_pydatetime()
    # Feast reads [start, end): one second past the newest reading takes it in.
    end = readings[TIMESTAMP].max().to_pydatetime() + datetime.timedelta(seconds=1)
    store = open_store(repo)
    print(f"[materialize] {len(readings):,} readings of span(s) {', '.join(pending)} into the online store "
          f"({type(store.config.online_store).__name__})", flush=True)
    store.materialize(start_date=start, end_date=end, feature_views=[dataset.WEATHER_VIEW])
    mark_materialized(repo, {span: state["synced"][span] for span in pending})
    metadata.update({"rows": int(len(readings)), "start": start.strftime("%Y-%m-%dT%H:%M"),
                     "end": readings[TIMESTAMP].max().strftime("%Y-%m-%dT%H:%M"),
                     "online_spans": sorted({*state["materialized"], *pending}),
                     "online_store": store.config.online_store.type})
    return metadata
