"""The point-in-time join of a dataset against the feature views its spec declares."""

from __future__ import annotations

import os
from typing import Any

from components.spans import FEEDS_FOLDER, span_file


def join_dataset(dataset_path: str, extracted: dict[str, Any], source_uri: str, repo: str,
                 output_path: str, spec) -> dict[str, Any]:
    """Writes each span of the dataset again with the feature views' features joined.

    A dataset whose spec declares no feature view passes through as it is (its rows carry every
    feature).

    Args:
        dataset_path: The extracted dataset folder (``<span>.parquet`` per span).
        extracted: Its metadata (spans, rows, data hash), passed on.
        source_uri: The span source whose feeds the views read.
        repo: The Feast repository.
        output_path: The folder to write.
        spec: The dataset spec (``DatasetSpec``).

    Returns:
        The extracted metadata plus ``feature_view`` (comma-separated), ``features``, ``offline_uri``
        and ``rows_without_features`` per span (rows a view had nothing for).
    """
    import shutil

    import pandas as pd

    os.makedirs(output_path, exist_ok=True)
    if os.path.isdir(os.path.join(dataset_path, FEEDS_FOLDER)):  # the other feeds' rows, for validation
        shutil.copytree(os.path.join(dataset_path, FEEDS_FOLDER), os.path.join(output_path, FEEDS_FOLDER),
                        dirs_exist_ok=True)
    if not spec.feature_views:
        for span in extracted["spans"]:
            shutil.copyfile(os.path.join(dataset_path, span_file(span)),
                            os.path.join(output_path, span_file(span)))
        print(f"[join_features] {spec.name} declares no feature view: {len(extracted['spans'])} span(s) "
              "passed through", flush=True)
        return {**extracted, "feature_view": "", "features": []}

    from components.feature_store.offline import join_views, stored_keys, sync_view
    from components.feature_store.repo import open_store

    synced, known = {}, {}
    for view in spec.feature_views:
        synced[view.name] = sync_view(source_uri, repo, spec, view)
        known[view.name] = stored_keys(repo, view)
        print(f"[join_features] {view.name}: {len(synced[view.name]['spans'])} span(s) of the {view.feed} feed in "
              f"the offline store {synced[view.name]['offline_uri']} ({len(synced[view.name]['written'])} new or "
              "changed)", flush=True)
    store = open_store(repo, spec)
    spans = extracted["spans"]
    frames = [pd.read_parquet(os.path.join(dataset_path, span_file(span))) for span in spans]
    lacking = [pd.Series(False, index=range(len(frame))) for frame in frames]
    for view in spec.feature_views:  # one point-in-time join per view for every span
        frames = join_views(store, frames, view, spec, known[view.name])
        lacking = [gap | frame[view.features].isna().all(axis=1) for gap, frame in zip(lacking, frames)]
    without = {}
    for span, joined, gap in zip(spans, frames, lacking):
        joined.to_parquet(os.path.join(output_path, span_file(span)), index=False)
        without[span] = int(gap.sum())
        print(f"[join_features] span {span}: {len(joined):,} rows, {without[span]:,} without a view's features",
              flush=True)
    first = spec.feature_views[0]
    return {**extracted, "feature_view": ",".join(view.name for view in spec.feature_views),
            "features": spec.looked_up_features, "offline_uri": synced[first.name]["offline_uri"],
            "rows_without_features": without}
