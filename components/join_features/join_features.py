"""The point-in-time join of a dataset's flights against the weather feature view."""

from __future__ import annotations

import os
from typing import Any

from components import dataset
from components.spans import FEEDS_FOLDER, span_file


def join_dataset(dataset_path: str, extracted: dict[str, Any], source_uri: str, repo: str,
                 output_path: str, spec=None) -> dict[str, Any]:
    """Writes each span of the dataset again with the feature views' features joined.

    A dataset whose spec declares no feature view passes through as it is (its rows carry every
    feature).

    Args:
        dataset_path: The extracted dataset folder (``<span>.parquet`` per span).
        extracted: Its metadata (spans, rows, data hash), passed on.
        source_uri: The span source whose weather feeds the offline store.
        repo: The Feast repository.
        output_path: The folder to write.
        spec: The dataset spec (``DatasetSpec``); None: the feature views of the feature store library.

    Returns:
        The extracted metadata plus ``feature_view``, ``features``, ``offline_uri`` and
        ``rows_without_weather`` per span.
    """
    import shutil

    import pandas as pd

    os.makedirs(output_path, exist_ok=True)
    if os.path.isdir(os.path.join(dataset_path, FEEDS_FOLDER)):  # the other feeds' rows, for validation
        shutil.copytree(os.path.join(dataset_path, FEEDS_FOLDER), os.path.join(output_path, FEEDS_FOLDER),
                        dirs_exist_ok=True)
    if spec is not None and not spec.feature_views:
        for span in extracted["spans"]:
            shutil.copyfile(os.path.join(dataset_path, span_file(span)),
                            os.path.join(output_path, span_file(span)))
        print(f"[join_features] {spec.name} declares no feature view: {len(extracted['spans'])} span(s) "
              "passed through", flush=True)
        return {**extracted, "feature_view": "", "features": []}

    from components.feature_store.offline import join_weather, stored_keys, sync_weather
    from components.feature_store.repo import open_store

    synced = sync_weather(source_uri, repo)
    print(f"[join_features] weather of {len(synced['spans'])} span(s) in the offline store "
          f"{synced['offline_uri']} ({len(synced['written'])} new or changed)", flush=True)
    store = open_store(repo)
    known = stored_keys(repo)
    without = {}
    for span in extracted["spans"]:
        flights = pd.read_parquet(os.path.join(dataset_path, span_file(span)))
        joined = join_weather(store, flights, known)
        joined.to_parquet(os.path.join(output_path, span_file(span)), index=False)
        without[span] = int(joined[dataset.WEATHER_FEATURES].isna().all(axis=1).sum())
        print(f"[join_features] span {span}: {len(joined):,} flights, {without[span]:,} without a reading",
              flush=True)
    return {**extracted, "feature_view": dataset.WEATHER_VIEW, "features": list(dataset.WEATHER_FEATURES),
            "offline_uri": synced["offline_uri"], "rows_without_weather": without}
