"""Materialization: which readings are new, are they sound, and into the online store with them."""

from __future__ import annotations

import datetime
from typing import Any

from components.kfp_io import ComponentError
from components.spans import SPAN_COLUMN


def check_domains(readings, view, spec) -> None:
    """Refuses readings outside the curated schema's domains (what the serving skew guard allows).

    Rare glitches were stored as missing already (``offline.GLITCH_SHARE``): what is left is a broken feed.

    Raises:
        ComponentError: Naming the span, feature, value, keys and domain of the first such reading.
    """
    from components.feature_store.offline import outside_domain
    from components.schema_domains import parse_domains

    domains = parse_domains(spec.schema_text) if spec.schema_text else {}
    columns = spec.columns(view.feed)
    keys = [entity["name"] for entity in view.entities]
    for name in view.features:
        domain = domains.get(name)
        if columns[name] == "string" or domain is None:
            continue
        column = readings[name]
        outside = outside_domain(column, domain)
        if outside.any():
            row = outside.to_numpy().nonzero()[0][0]
            where = " ".join(str(readings[key].iloc[row]) for key in keys)
            raise ComponentError(
                f"{view.feed} of span {readings[SPAN_COLUMN].iloc[row]}: {name} = {column.iloc[row]} at {where}: "
                f"{domain.violation(float(column.iloc[row]))} (the data validation schema); nothing was "
                "materialized, serving keeps the features it had")


def materialize_new(source_uri: str, repo: str, spec) -> dict[str, Any]:
    """Brings each feature view's feed into the offline store and the readings not yet online into the online store.

    Every view is checked before any is written online: a broken feed leaves the online store as it was.

    Returns:
        Lineage metadata: ``feature_view`` (the views, comma-separated), ``features``, ``spans``
        materialized now, ``start`` and ``end`` of their time range (ISO), ``rows``,
        ``online_spans`` (the spans every view holds online) and ``offline_uri`` (the first view's).

    Raises:
        ComponentError: A feed file cannot be read, or a reading is outside its domain.
    """
    from components.feature_store.offline import mark_materialized, read_spans, read_state, sync_view
    from components.feature_store.repo import TIMESTAMP, open_store

    synced, states, pending, readings = {}, {}, {}, {}
    for view in spec.feature_views:
        synced[view.name] = sync_view(source_uri, repo, spec, view)
        state = states[view.name] = read_state(repo, view)
        pending[view.name] = sorted(span for span, digest in state["synced"].items()
                                    if state["materialized"].get(span) != digest)
        if pending[view.name]:
            readings[view.name] = read_spans(repo, view, pending[view.name])
            check_domains(readings[view.name], view, spec)
    views = spec.feature_views
    metadata: dict[str, Any] = {"feature_view": ",".join(view.name for view in views),
                                "features": [name for view in views for name in view.features],
                                "offline_uri": synced[views[0].name]["offline_uri"] if views else "",
                                "spans": sorted({span for spans in pending.values() for span in spans}), "rows": 0}
    if readings:
        store = open_store(repo, spec)
        starts, ends = [], []
        for view in views:
            if view.name not in readings:
                continue
            frame = readings[view.name]
            start = frame[TIMESTAMP].min().to_pydatetime()
            # Feast reads [start, end): one second past the newest reading takes it in.
            end = frame[TIMESTAMP].max().to_pydatetime() + datetime.timedelta(seconds=1)
            print(f"[materialize] {view.name}: {len(frame):,} readings of span(s) {', '.join(pending[view.name])} "
                  f"into the online store ({type(store.config.online_store).__name__})", flush=True)
            store.materialize(start_date=start, end_date=end, feature_views=[view.name])
            mark_materialized(repo, view, {span: states[view.name]["synced"][span] for span in pending[view.name]})
            metadata["rows"] += int(len(frame))
            starts.append(frame[TIMESTAMP].min())
            ends.append(frame[TIMESTAMP].max())
        metadata.update({"start": min(starts).strftime("%Y-%m-%dT%H:%M"), "end": max(ends).strftime("%Y-%m-%dT%H:%M"),
                         "online_store": store.config.online_store.type})
    else:
        print(f"[materialize] the online store holds every span of {metadata['feature_view']} already", flush=True)
    # What is online now: what was, and what this call materialized (a failure above raised).
    online = [set(states[view.name]["materialized"]) | set(pending[view.name]) for view in views]
    metadata["online_spans"] = sorted(set.intersection(*online)) if online else []
    return metadata
