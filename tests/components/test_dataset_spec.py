"""Dataset specs: every example loads, and a broken spec is refused naming the key and the problem."""

import copy
import glob
import os

import pytest

from components.dataset_spec import DatasetSpec, SpecError, expression_names
from components.paths import REPO_ROOT
from pipelines.examples.flights import dataset

EXAMPLES = sorted(glob.glob(os.path.join(REPO_ROOT, "pipelines", "examples", "*", "spec.toml")))
FLIGHTS = os.path.join(REPO_ROOT, "pipelines", "examples", "flights", "spec.toml")


def test_the_examples_are_found():
    names = {os.path.basename(os.path.dirname(path)) for path in EXAMPLES}
    assert {"flights", "taxi", "taxi_fare"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_every_example_loads_and_travels_as_json_unchanged(path):
    spec = DatasetSpec.load(path)
    again = DatasetSpec.from_json(spec.to_json())
    assert again.digest() == spec.digest() and again.raw == spec.raw
    request = spec.path(spec.serving["example_request"])
    assert os.path.exists(request), request
    if spec.schema_path:
        assert os.path.exists(spec.schema_path), spec.schema_path


def test_the_digest_follows_the_content_not_the_file():
    spec = DatasetSpec.load(FLIGHTS)
    moved = DatasetSpec(copy.deepcopy(spec.raw), origin="elsewhere.toml", base_dir="/tmp",
                        schema_text=spec.schema_text)
    assert moved.digest() == spec.digest()
    assert DatasetSpec(copy.deepcopy(spec.raw), schema_text=spec.schema_text + "\n").digest() != spec.digest()
    assert DatasetSpec.from_json(spec.to_json()).schema_text == spec.schema_text  # the schema travels with it
    changed = copy.deepcopy(spec.raw)
    changed["split"]["salt"] = "ct-flights-salt2"
    assert DatasetSpec(changed).digest() != spec.digest()


def test_the_flights_spec_says_what_today_s_dataset_constants_say():
    """The flights example's constants (its landing and tests use them) and its spec (the pipeline's) agree."""
    spec = DatasetSpec.load(FLIGHTS)
    pandas_type = {"string": "object"}
    assert {c: pandas_type.get(t, t) for c, t in spec.columns("flights").items()} == dataset.FLIGHT_COLUMNS
    assert {c: pandas_type.get(t, t) for c, t in spec.columns("weather").items()} == dataset.WEATHER_COLUMNS
    assert spec.categorical == dataset.CATEGORICAL_FEATURES and spec.numeric == dataset.NUMERIC_FEATURES
    assert spec.sent_features == dataset.FLIGHT_FEATURES
    assert spec.looked_up_features == dataset.WEATHER_FEATURES
    assert spec.feature_views[0].name == dataset.WEATHER_VIEW
    assert spec.feature_views[0].entities[1]["name"] == dataset.WEATHER_HOUR
    assert spec.split_key == dataset.SPLIT_KEY
    assert spec.label == dataset.LABEL and spec.label_columns == [dataset.LABEL_SOURCE]
    assert spec.raw["label"]["threshold"] == dataset.DELAY_THRESHOLD_MINUTES
    assert spec.schema_path == dataset.CURATED_SCHEMA
    assert (spec.feeds["flights"].file, spec.feeds["weather"].file) == (dataset.SPAN_FILE, dataset.WEATHER_FILE)


def _broken(change):
    raw = copy.deepcopy(DatasetSpec.load(FLIGHTS).raw)
    change(raw)
    return raw


def _set(path, value):
    def change(raw):
        node = raw
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _delete(path):
    def change(raw):
        node = raw
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change


@pytest.mark.parametrize("change, words", [
    (_delete(["label"]), "label: is required"),
    (_set(["labels"], {}), "labels: is not a known key"),
    (_set(["source", "granularity"], "week"), "source.granularity: 'week' is not one of day, month, quarter, year"),
    (_set(["feeds", "flights", "columns", "year"], "integer"), "feeds.flights.columns.year: 'integer' is not one of"),
    (_set(["feeds", "flights", "format"], "xlsx"), "feeds.flights.format: 'xlsx' is not one of parquet, csv"),
    (_delete(["feeds", "flights", "primary_key"]), "feeds.flights.primary_key: is required for the main feed"),
    (_set(["feeds", "flights", "primary_key"], ["year", "flightno"]),
     "feeds.flights.primary_key[1]: 'flightno' is not a column"),
    (_set(["feeds", "flights", "event_time"], {"column": "year", "parts": {}}),
     "feeds.flights.event_time: declares either column"),
    (_set(["features", "categorical"], ["carrier", "origin", "gate"]),
     "features.categorical[2]: 'gate' is not a column"),
    (_set(["features", "numeric"], ["month", "tailnum"]), "features.numeric[1]: 'tailnum' is a string column"),
    (_set(["features", "numeric"], ["month", "arr_delay"]), "the label is computed from features alone"),
    (_set(["label", "task"], "ranking"), "label.task: 'ranking' is not one of binary_classification, regression"),
    (_set(["label", "expression"], "arr_delay > 15"), "label: declares threshold and expression: one rule only"),
    (_set(["label", "column"], "arrival"), "label.column[0]: 'arrival' is not a column"),
    (_set(["split", "salt"], "short"), "split.salt: must be 16 bytes"),
    (_set(["split", "key"], []), "split.key: must be a non-empty list"),
    (_set(["metric", "primary"], "rmse"), "metric.primary: 'rmse' is not one of auc"),
    (_set(["metric", "threshold"], "high"), "metric.threshold: must be a number, got a string ('high')"),
    (_set(["serving", "model_name"], "Flights_Delay"), "serving.model_name: 'Flights_Delay' must be a DNS label"),
    (_set(["model", "estimator"], "HistGradientBoosting"), "model.estimator: 'HistGradientBoosting' must be an "
                                                           "import path"),
    (_set(["model", "pipeline_parameters"], ["learning_rate", "depth"]),
     "model.pipeline_parameters[1]: 'depth' is not a hyperparameter"),
    (_set(["checks", "values"], [{"check": "hhmm", "columns": ["dep_time"]}]),
     "checks.values[0].check: 'hhmm' is not one of hhmm_clock"),
    (_set(["evaluation", "slices"], ["airport"]), "evaluation.slices[0]: 'airport' is not a column"),
    (_set(["checks", "fatal_drift"], {"temp": 1.5}), "checks.fatal_drift.temp: 1.5 is outside [0, 1]"),
    (_set(["feature_views", 0, "entities", 0, "row"], {"column": "tailnum"}),
     "feature_views[0].entities[0].row: 'tailnum' is not a feature the caller sends"),
    (_set(["checks", "fatal_drift"], {"gate": 0.2}), "checks.fatal_drift.gate: is not a column of the main feed"),
])
def test_a_broken_spec_is_refused_naming_the_key_and_the_problem(change, words):
    with pytest.raises(SpecError) as refused:
        DatasetSpec(_broken(change), origin="spec.toml")
    assert str(refused.value).startswith("spec.toml: ")
    assert words in str(refused.value)


def test_a_feature_view_must_join_by_columns_that_exist_on_both_sides():
    def change(raw):
        raw["feature_views"][0]["entities"][1]["row"] = {"hour_of": {"month": "month", "day": "day", "hour": "hr"}}
    with pytest.raises(SpecError, match=r"feature_views\[0\]\.entities\[1\]\.row\.hour_of\.hour\[0\]: 'hr' is not"):
        DatasetSpec(_broken(change), origin="spec.toml")


@pytest.mark.parametrize("expression, words", [
    ("__import__('os').system('true')", "Call is not allowed"),
    ("tips.real > 1", "Attribute is not allowed"),
    ("tips >", "not a valid expression"),
    ("[tips] > 1", "List is not allowed"),
])
def test_a_label_expression_is_arithmetic_and_comparisons_only(expression, words):
    def change(raw):
        del raw["label"]["threshold"], raw["label"]["op"], raw["label"]["column"]
        raw["label"]["expression"] = expression
    with pytest.raises(SpecError) as refused:
        DatasetSpec(_broken(change), origin="spec.toml")
    assert "label.expression" in str(refused.value) and words in str(refused.value)


def test_expression_names_in_order_of_use():
    assert expression_names("tips > 0.2 * fare and fare > 0") == ["tips", "fare"]


def test_a_file_that_is_not_toml_or_not_there_is_named(tmp_path):
    bad = tmp_path / "spec.toml"
    bad.write_text("[dataset\nname = 1\n")
    with pytest.raises(SpecError, match=r"spec.toml: not valid TOML"):
        DatasetSpec.load(str(bad))
    with pytest.raises(SpecError, match=r"missing.toml: cannot be read"):
        DatasetSpec.load(str(tmp_path / "missing.toml"))
    with pytest.raises(SpecError, match="dataset_spec: not valid JSON"):
        DatasetSpec.from_json("{spec")
