"""The core (components/, pipelines/ outside the examples) names no example dataset.

Every column, feed file, feed, label, feature view, entity and model name the example specs
declare is searched as a string literal in the core's code, and an import of the flights
constants module (``pipelines/examples/flights/dataset.py``) counts as naming the flights. ``NOT_YET``
is empty and may stay so: a file of the core that names a dataset fails the test.
"""

import ast
import glob
import os

from components.dataset_spec import DatasetSpec
from components.paths import REPO_ROOT

#: Words that are core vocabulary as well as example columns (granularities, the span column).
GENERIC = {"year", "month", "day", "hour", "minute", "span"}
#: Files of the core that still name a dataset, and why (the remaining work of the spec issue).
NOT_YET: dict[str, str] = {}


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
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipelines.examples."):
            found.add(f"import of {node.module}")
        if isinstance(node, ast.ImportFrom) and node.module == "pipelines.examples" and any(
                alias.name not in ("EXAMPLES_DIR", "DEFAULT_SPEC") for alias in node.names):
            found.add("import of an example")
    return sorted(found)


def test_the_core_names_no_example_dataset_beyond_the_files_still_to_move():
    names = _dataset_names()
    assert {"arr_delay", "flights.parquet", "flights-delay", "tips", "trips.csv", "taxi-fare"} <= names
    naming = {relative: _names_a_dataset(relative, names) for relative in _core_files()}
    offenders = {relative: found for relative, found in naming.items() if found and relative not in NOT_YET}
    assert not offenders, f"core files naming an example dataset: {offenders}"
    moved = sorted(relative for relative in NOT_YET if not naming.get(relative))
    assert not moved, f"these no longer name a dataset: take them off NOT_YET: {moved}"
