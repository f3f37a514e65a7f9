"""The core (components/, pipelines/ outside the examples) names no example dataset.

Every column, feed file, feed, label, feature view, entity and model name the example specs
declare is searched as a string literal in the core's code, and an import of the flights
constants module (components/dataset.py) counts as naming the flights. The files listed in
``NOT_YET`` still do, and are what is left to move behind the spec (the weather feature store,
the monitor's weather lookup, the flights demo); the list may only shrink: a file that no longer
names a dataset must leave it, and no other file may join it.
"""

import ast
import glob
import os

from components.dataset_spec import DatasetSpec
from components.paths import REPO_ROOT

#: Words that are core vocabulary as well as example columns (granularities, the span column).
GENERIC = {"year", "month", "day", "hour", "minute", "span"}
#: Files of the core that still name a dataset, and why (the remaining work of the spec issue).
NOT_YET = {
    "components/dataset.py": "the flights constants, read by the modules below",
    "components/sources.py": "the flights' default feed files and the plain weather join",
    "components/feature_lookup.py": "the weather view's keys (origin, hour of sched_dep_time)",
    "components/feature_store/materialization.py": "Feast definitions of the weather view",
    "components/feature_store/offline.py": "Feast definitions of the weather view",
    "components/feature_store/repo.py": "Feast definitions of the weather view",
    "components/join_features/join_features.py": "joins the weather view when a spec declares views",
    "components/model_server/features.py": "looks the weather up for requests",
    "components/model_server/replay.py": "replays flights as traffic",
    "components/monitor/analysis.py": "the flights schema for skew",
    "components/monitor/monitor.py": "looks the weather of logged requests up",
    "pipelines/demo/demo.py": "the year replay of the flights example",
    "pipelines/loop/watch.py": "the default source folder of the local watcher",
}


def _dataset_names() -> set:
    names = set()
    for path in glob.glob(os.path.join(REPO_ROOT, "pipelines", "examples", "*", "spec.toml")):
        spec = DatasetSpec.load(path)
        names |= {spec.name, spec.label, spec.model_name}
        for feed in spec.feeds.values():
            names |= set(feed.columns) | {feed.file, feed.name}
        for view in spec.feature_views:
            names |= {view.name} | {entity["name"] for entity in view.entities}
    return names - GENERIC


def _core_files():
    for folder in ("components", "pipelines"):
        for path in sorted(glob.glob(os.path.join(REPO_ROOT, folder, "**", "*.py"), recursive=True)):
            relative = os.path.relpath(path, REPO_ROOT)
            if not relative.startswith(os.path.join("pipelines", "examples")):
                yield relative


def _names_a_dataset(relative: str, names: set) -> list[str]:
    tree = ast.parse(open(os.path.join(REPO_ROOT, relative), encoding="utf-8").read())
    found = {node.value for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module == "components.dataset" or (
                node.module == "components" and any(alias.name == "dataset" for alias in node.names))):
            found.add("import of components.dataset")
    return sorted(found)


def test_the_core_names_no_example_dataset_beyond_the_files_still_to_move():
    names = _dataset_names()
    assert {"arr_delay", "flights.parquet", "flights-delay", "tips", "trips.csv", "taxi-fare"} <= names
    naming = {relative: _names_a_dataset(relative, names) for relative in _core_files()}
    offenders = {relative: found for relative, found in naming.items() if found and relative not in NOT_YET}
    assert not offenders, f"core files naming an example dataset: {offenders}"
    moved = sorted(relative for relative in NOT_YET if not naming.get(relative))
    assert not moved, f"these no longer name a dataset: take them off NOT_YET: {moved}"
