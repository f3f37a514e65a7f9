"""A dataset spec: everything the loop needs to know of one tabular dataset, in one TOML file.

The core names no dataset: sources, feeds and their columns, event time, primary key, label
rule and task, features and feature views, split, slices, schema, checks, model, metric,
serving and monitoring are declared here, per dataset (``pipelines/examples/<name>/spec.toml``).
README "Bring your own data" documents every key.

TOML, not YAML: Python 3.11 reads it with the standard library (``tomllib``), so every runtime
image parses it without an added package, and its types are strict (no ``no`` read as false,
no octal surprises). A spec travels to the pipeline's steps as its canonical JSON
(``DatasetSpec.to_json``), a pipeline input, so a cluster needs no image rebuild for a new
dataset, and its hash (``DatasetSpec.digest``) is part of the data version.

Standard library only: every runtime reads it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Optional

from components.spans import GRANULARITIES, SpanError, split_window

FORMATS = ("parquet", "csv")
#: Column types a feed may declare (pandas dtypes of the loaded frame).
COLUMN_TYPES = ("int64", "float64", "string", "bool", "timestamp")
TASKS = ("binary_classification", "regression")
#: Metrics by task, with the direction in which they are better.
METRICS = {
    "binary_classification": {"auc": "maximize", "accuracy": "maximize", "f1": "maximize",
                              "log_loss": "minimize", "precision": "maximize", "recall": "maximize"},
    "regression": {"rmse": "minimize", "mae": "minimize", "r2": "maximize"},
}
def metric_label(name: str) -> str:
    """A metric's name as reports print it: ``AUC``, ``RMSE``, ``MAE``, ``R2``, ``log loss``, ``accuracy``."""
    return {"auc": "AUC", "rmse": "RMSE", "mae": "MAE", "r2": "R2", "log_loss": "log loss", "f1": "F1"}.get(name, name)


#: Event-time declarations: a timestamp column (with a unit for numbers), or date parts.
TIME_UNITS = ("s", "ms", "us", "ns", "iso")
TIME_PARTS = ("year", "month", "day", "hour", "hhmm")
#: Named value checks a spec may apply to columns.
VALUE_CHECKS = ("hhmm_clock",)
CATEGORICAL_ENCODINGS = ("ordinal", "one_hot")
NUMERIC_TRANSFORMS = ("passthrough", "standard_scale")


class SpecError(ValueError):
    """A spec that cannot be used: the message names the file, the key and the problem."""


@dataclass(frozen=True)
class Feed:
    """One file of a span: its name, format, columns and event time."""

    name: str
    file: str
    format: str
    columns: dict[str, str]
    event_time: dict[str, Any]
    primary_key: list[str]
    csv: dict[str, Any]


@dataclass(frozen=True)
class FeatureView:
    """Features a feature store supplies, joined by keys derived from a row's columns."""

    name: str
    feed: str
    features: list[str]
    entities: list[dict[str, Any]]
    ttl_seconds: int


class DatasetSpec:
    """A validated dataset spec (``load`` reads one; ``from_json`` reads what a step was given)."""

    def __init__(self, raw: dict[str, Any], origin: str = "<spec>", base_dir: str = ".",
                 schema_text: Optional[str] = None):
        """Validates a parsed spec.

        Args:
            raw: The parsed TOML (or the JSON a step received).
            origin: Where it came from, for error messages.
            base_dir: The folder relative paths in the spec (schema, example request) start from.
            schema_text: The curated schema (TFDV text format) the spec names; None: read from
                ``schema.file`` when the spec names one and it exists.

        Raises:
            SpecError: A key is missing, unknown, of the wrong type or inconsistent with another.
        """
        self.raw = raw
        self.origin = origin
        self.base_dir = base_dir
        _Validator(raw, origin).validate()
        self.name: str = raw["dataset"]["name"]
        source = raw["source"]
        self.granularity: str = source["granularity"]
        #: The window ``make run`` runs by default, and the module that lands demo spans (python -m MODULE FOLDER).
        self.window: Optional[str] = source.get("window")
        self.landing: Optional[str] = source.get("landing")
        self.feeds: dict[str, Feed] = {
            name: Feed(name=name, file=feed.get("file", f"{name}.{feed.get('format', 'parquet')}"),
                       format=feed.get("format", "parquet"), columns=dict(feed["columns"]),
                       event_time=dict(feed["event_time"]), primary_key=list(feed.get("primary_key", [])),
                       csv=dict(feed.get("csv", {})))
            for name, feed in raw["feeds"].items()}
        self.main_feed: str = source.get("main_feed", next(iter(raw["feeds"])))
        label = raw["label"]
        self.label: str = label["name"]
        self.task: str = label["task"]
        features = raw["features"]
        self.categorical: list[str] = list(features.get("categorical", []))
        self.numeric: list[str] = list(features.get("numeric", []))
        self.feature_views: list[FeatureView] = [
            FeatureView(name=view["name"], feed=view["feed"], features=list(view["features"]),
                        entities=[dict(e) for e in view["entities"]], ttl_seconds=int(view.get("ttl_seconds", 0)))
            for view in raw.get("feature_views", [])]
        self.split_key: list[str] = list(raw["split"]["key"])
        self.split_salt: str = raw["split"]["salt"]
        self.slices: list[str] = list(raw.get("evaluation", {}).get("slices", []))
        self.metric: dict[str, Any] = dict(raw["metric"])
        self.model: dict[str, Any] = dict(raw["model"])
        self.serving: dict[str, Any] = dict(raw["serving"])
        self.monitoring: dict[str, Any] = dict(raw.get("monitoring", {}))
        #: The rules of online experiments (``experiment_rules``), as the spec writes them.
        self.experiment: dict[str, Any] = dict(raw.get("experiment", {}))
        self.checks: dict[str, Any] = dict(raw.get("checks", {}))
        if schema_text is None and self.schema_path and os.path.exists(self.schema_path):
            with open(self.schema_path, encoding="utf-8") as handle:
                schema_text = handle.read()
        #: The curated schema's text (it travels with the spec to every step), or None: inferred.
        self.schema_text: Optional[str] = schema_text

    # -- reading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str) -> DatasetSpec:
        """Reads and validates a spec file: ``spec.toml``, or the JSON of ``to_json`` (``*.json``).

        A cluster mounts the JSON (the ConfigMap ``ct-dataset-spec``).

        Raises:
            SpecError: The file cannot be read, is not TOML (JSON), or is not a valid spec.
        """
        import tomllib

        if path.endswith(".json"):
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as error:
                raise SpecError(f"{path}: cannot be read: {error.strerror or error}") from None
            spec = cls.from_json(text)
            spec.origin = path
            return spec
        try:
            with open(path, "rb") as handle:
                raw = tomllib.load(handle)
        except OSError as error:
            raise SpecError(f"{path}: cannot be read: {error.strerror or error}") from None
        except tomllib.TOMLDecodeError as error:
            raise SpecError(f"{path}: not valid TOML: {error}") from None
        return cls(raw, origin=path, base_dir=os.path.dirname(os.path.abspath(path)))

    @classmethod
    def from_json(cls, text: str) -> DatasetSpec:
        """Reads the canonical JSON a pipeline step receives (``to_json``).

        Raises:
            SpecError: It is not JSON or not a valid spec.
        """
        try:
            payload = json.loads(text)
        except ValueError as error:
            raise SpecError(f"dataset_spec: not valid JSON: {error}") from None
        if not isinstance(payload, dict) or "spec" not in payload:
            raise SpecError("dataset_spec: expected the JSON written by DatasetSpec.to_json ({'spec': ...})")
        return cls(payload["spec"], origin="dataset_spec", schema_text=payload.get("schema"))

    def to_json(self) -> str:
        """The canonical JSON of the spec's content (sorted keys): what the pipeline passes to its steps.

        The curated schema's text travels with it (a cluster's steps have no checkout); where the spec
        was read is left out, so a compiled pipeline is the same in every checkout.
        """
        payload: dict[str, Any] = {"spec": self.raw}
        if self.schema_text is not None:
            payload["schema"] = self.schema_text
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """SHA-256 of the spec's content and its curated schema (not of where it was read): part of the data version."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    # -- what the core asks ------------------------------------------------------------------

    @property
    def features(self) -> list[str]:
        """The model's features: categorical, then numeric."""
        return self.categorical + self.numeric

    @property
    def looked_up_features(self) -> list[str]:
        """Features a feature view supplies (the caller does not send them)."""
        return [name for view in self.feature_views for name in view.features]

    @property
    def sent_features(self) -> list[str]:
        """Features the caller sends."""
        looked_up = set(self.looked_up_features)
        return [name for name in self.features if name not in looked_up]

    @property
    def label_columns(self) -> list[str]:
        """The source columns the label is computed from."""
        rule = self.raw["label"]
        if "expression" in rule:
            return expression_names(rule["expression"])
        return [rule["column"]]

    def columns(self, feed: Optional[str] = None) -> dict[str, str]:
        """Column -> type of a feed (default: the main feed)."""
        return self.feeds[feed or self.main_feed].columns

    def joined_columns(self) -> dict[str, str]:
        """Column -> type of the rows validation and training see: the main feed and its looked-up features."""
        joined = dict(self.columns())
        for view in self.feature_views:
            for name in view.features:
                joined[name] = self.feeds[view.feed].columns[name]
        return joined

    def path(self, relative: str) -> str:
        """A path of the spec (schema, example request), relative to the spec's folder."""
        return relative if os.path.isabs(relative) else os.path.join(self.base_dir, relative)

    @property
    def schema_path(self) -> Optional[str]:
        """The curated schema file, or None when the spec names none (then it is inferred)."""
        schema = self.raw.get("schema", {}).get("file")
        return self.path(schema) if schema else None

    @property
    def model_name(self) -> str:
        """The served model's name (URLs, registry)."""
        return self.serving["model_name"]

    def experiment_rules(self):
        """The rules of this dataset's online experiments (``components.experiment.rules.ExperimentRules``).

        ``min_effect`` defaults to ``metric.max_change``: the change of the primary metric, in its
        units, that this spec already treats as one that matters.
        """
        from components.experiment.rules import ExperimentRules

        return ExperimentRules.from_dict({**_effect_default(self.metric), **self.experiment})

    @property
    def metric_direction(self) -> str:
        """``maximize`` or ``minimize`` for the primary metric."""
        return METRICS[self.task][self.metric["primary"]]

    def span_pattern(self) -> re.Pattern:
        """The regular expression a span folder name of this dataset matches."""
        return GRANULARITIES[self.granularity][1]

    def value_checks(self) -> dict[str, list[str]]:
        """Named value checks -> the columns they apply to."""
        return {check["check"]: list(check["columns"]) for check in self.checks.get("values", [])}


#: Comparison operators of a threshold label rule.
COMPARISONS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}

# -- label expressions: arithmetic and comparisons over column names, nothing else -----------

_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Name, ast.Load,
                  ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub,
                  ast.UAdd, ast.Gt, ast.GtE, ast.Lt, ast.LtE, ast.Eq, ast.NotEq, ast.And, ast.Or, ast.Not)


def parse_expression(text: str) -> ast.Expression:
    """Parses a label expression, refusing anything but column names, numbers, arithmetic and comparisons."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise SpecError(f"not a valid expression: {error.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise SpecError(f"{type(node).__name__} is not allowed in an expression "
                            "(column names, numbers, + - * / // % **, comparisons, and/or/not)")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str)):
            raise SpecError(f"constant {node.value!r} is not allowed in an expression")
    return tree


def expression_names(text: str) -> list[str]:
    """The column names an expression reads, in order of first use."""
    names: list[str] = []
    for node in ast.walk(parse_expression(text)):
        if isinstance(node, ast.Name) and node.id not in names:
            names.append(node.id)
    return names


# -- validation ------------------------------------------------------------------------------


class _Validator:
    """Checks a parsed spec, naming the first problem's key (``feeds.flights.columns.year``)."""

    TOP = {"dataset", "source", "feeds", "label", "features", "feature_views", "split", "evaluation", "schema",
           "checks", "model", "metric", "serving", "monitoring", "experiment"}

    def __init__(self, raw: Any, origin: str):
        self.raw = raw
        self.origin = origin

    def fail(self, key: str, problem: str):
        raise SpecError(f"{self.origin}: {key}: {problem}")

    def table(self, value: Any, key: str, required: set[str], optional: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"must be a table, got {_kind(value)}")
        for name in sorted(required - value.keys()):
            self.fail(f"{key}.{name}" if key else name, "is required")
        if optional is not None:
            for name in sorted(value.keys() - required - set(optional)):
                self.fail(f"{key}.{name}" if key else name,
                          f"is not a known key (known: {', '.join(sorted(required | set(optional)))})")
        return value

    def string(self, value: Any, key: str, choices: Optional[tuple] = None) -> str:
        if not isinstance(value, str) or not value:
            self.fail(key, f"must be a non-empty string, got {_kind(value)}")
        if choices is not None and value not in choices:
            self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def number(self, value: Any, key: str, low: float = -math.inf, high: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            self.fail(key, f"must be a number, got {_kind(value)}")
        if not low <= value <= high:
            self.fail(key, f"{value} is outside [{low}, {high}]")
        return value

    def names(self, value: Any, key: str, known: Optional[dict] = None, what: str = "column",
              allow_empty: bool = False) -> list[str]:
        if not isinstance(value, list) or (not value and not allow_empty):
            self.fail(key, f"must be a {'' if allow_empty else 'non-empty '}list of names, got {_kind(value)}")
        for index, name in enumerate(value):
            self.string(name, f"{key}[{index}]")
            if known is not None and name not in known:
                self.fail(f"{key}[{index}]", f"{name!r} is not a {what} (known: {', '.join(sorted(known))})")
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            self.fail(key, f"names {', '.join(duplicates)} more than once")
        return value

    def validate(self) -> None:
        raw = self.table(self.raw, "", {"dataset", "source", "feeds", "label", "features", "split", "model",
                                         "metric", "serving"}, self.TOP)
        dataset = self.table(raw["dataset"], "dataset", {"name"}, {"description"})
        self.string(dataset["name"], "dataset.name")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", dataset["name"]):
            self.fail("dataset.name", f"{dataset['name']!r} must be lower-case letters, digits and '-'")
        source = self.table(raw["source"], "source", {"granularity"}, {"main_feed", "window", "landing"})
        self.string(source["granularity"], "source.granularity", tuple(GRANULARITIES))
        if "window" in source:
            try:
                split_window(self.string(source["window"], "source.window"), source["granularity"])
            except SpanError as error:
                self.fail("source.window", str(error))
        if "landing" in source and not re.fullmatch(r"[A-Za-z_][\w.]*", self.string(source["landing"],
                                                                                    "source.landing")):
            self.fail("source.landing", f"{source['landing']!r} must be a Python module (python -m MODULE FOLDER)")
        feeds = self.table(raw["feeds"], "feeds", set(), None)
        if not feeds:
            self.fail("feeds", "declares no feed")
        for name, feed in feeds.items():
            self.feed(name, feed)
        main = source.get("main_feed", next(iter(feeds)))
        if main not in feeds:
            self.fail("source.main_feed", f"{main!r} is not a feed (feeds: {', '.join(feeds)})")
        columns = feeds[main]["columns"]
        if not feeds[main].get("primary_key"):
            self.fail(f"feeds.{main}.primary_key", "is required for the main feed (duplicate records are found by it)")
        views = raw.get("feature_views", [])
        if not isinstance(views, list):
            self.fail("feature_views", f"must be an array of tables, got {_kind(views)}")
        joined = dict(columns)
        for index, view in enumerate(views):
            joined.update(self.feature_view(index, view, feeds, columns))
        task = self.label(raw["label"], columns)
        features = self.table(raw["features"], "features", set(), {"categorical", "numeric"})
        categorical = self.names(features.get("categorical", []), "features.categorical", joined, allow_empty=True)
        numeric = self.names(features.get("numeric", []), "features.numeric", joined, allow_empty=True)
        if not categorical and not numeric:
            self.fail("features", "declares no feature")
        both = sorted(set(categorical) & set(numeric))
        if both:
            self.fail("features", f"{', '.join(both)} both categorical and numeric")
        for index, name in enumerate(categorical):
            if joined[name] != "string":
                self.fail(f"features.categorical[{index}]",
                          f"{name!r} is a {joined[name]} column: categorical features are strings "
                          "(a numeric code is a numeric feature)")
        for index, name in enumerate(numeric):
            if joined[name] not in ("int64", "float64", "bool"):
                self.fail(f"features.numeric[{index}]", f"{name!r} is a {joined[name]} column, not a number")
        sources = self.label_sources(raw["label"])
        if sources and set(sources) <= set(categorical + numeric):
            self.fail("features", f"{', '.join(sources)}: the label is computed from features alone, "
                                  "it would leak (drop at least one of its sources from the features)")
        looked_up = {name for view in views for name in view["features"]}
        missing = sorted(looked_up - set(categorical + numeric))
        if missing:
            self.fail("feature_views", f"{', '.join(missing)} supplied by a view but not a feature")
        from components.feature_views import derivation_columns

        sent = set(categorical + numeric) - looked_up
        for index, view in enumerate(views):
            for number, entity in enumerate(view["entities"]):
                row = entity["row"]
                year = row.get("hour_of", {}).get("year")
                for name in (c for c in derivation_columns(row) if c != year):
                    if name not in sent:
                        # A caller sends the model's features: serving can derive the key only from those
                        # (and the year of an hour, which the model takes from its newest training span).
                        self.fail(f"feature_views[{index}].entities[{number}].row",
                                  f"{name!r} is not a feature the caller sends: serving could not form the key")
        split = self.table(raw["split"], "split", {"key", "salt"})
        self.names(split["key"], "split.key", columns)
        self.string(split["salt"], "split.salt")
        if len(split["salt"].encode()) != 16:
            self.fail("split.salt", f"must be 16 bytes (pandas' hash key), got {len(split['salt'].encode())}")
        evaluation = self.table(raw.get("evaluation", {}), "evaluation", set(), {"slices", "class_names"})
        self.names(evaluation.get("slices", []), "evaluation.slices", joined, allow_empty=True)
        if "class_names" in evaluation:
            names = self.names(evaluation["class_names"], "evaluation.class_names")
            if task != "binary_classification" or len(names) != 2:
                self.fail("evaluation.class_names", "names the two classes of a binary classification (0, then 1)")
        schema = self.table(raw.get("schema", {}), "schema", set(), {"file"})
        if "file" in schema:
            self.string(schema["file"], "schema.file")
        self.checks(raw.get("checks", {}), columns, joined)
        self.model(raw["model"], task)
        metric = self.table(raw["metric"], "metric", {"primary", "threshold", "max_change"})
        self.string(metric["primary"], "metric.primary", tuple(METRICS[task]))
        self.number(metric["threshold"], "metric.threshold")
        self.number(metric["max_change"], "metric.max_change", 0)
        serving = self.table(raw["serving"], "serving", {"model_name"}, {"example_request"})
        self.string(serving["model_name"], "serving.model_name")
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", serving["model_name"]):
            self.fail("serving.model_name", f"{serving['model_name']!r} must be a DNS label (an InferenceService name)")
        monitoring = self.table(raw.get("monitoring", {}), "monitoring", set(),
                                {"features", "drift_threshold", "skew_threshold", "max_metric_drop"})
        if "features" in monitoring:
            self.names(monitoring["features"], "monitoring.features", {n: 1 for n in categorical + numeric}, "feature")
        for key in ("drift_threshold", "skew_threshold", "max_metric_drop"):
            if key in monitoring:
                self.number(monitoring[key], f"monitoring.{key}", 0)

        experiment = raw.get("experiment", {})
        if not isinstance(experiment, dict):
            self.fail("experiment", "must be a table")
        from components.experiment.rules import ExperimentRules

        try:
            ExperimentRules.from_dict({**_effect_default(metric), **experiment})
        except (TypeError, ValueError) as error:
            self.fail("experiment", str(error))

    def feed(self, name: str, feed: Any) -> None:
        key = f"feeds.{name}"
        feed = self.table(feed, key, {"columns", "event_time"}, {"file", "format", "primary_key", "csv"})
        fmt = self.string(feed.get("format", "parquet"), f"{key}.format", FORMATS)
        if "file" in feed:
            self.string(feed["file"], f"{key}.file")
            if "/" in feed["file"]:
                self.fail(f"{key}.file", "is a file name inside the span folder, without '/'")
        columns = self.table(feed["columns"], f"{key}.columns", set(), None)
        if not columns:
            self.fail(f"{key}.columns", "declares no column")
        for column, kind in columns.items():
            self.string(kind, f"{key}.columns.{column}", COLUMN_TYPES)
        if "primary_key" in feed:
            self.names(feed["primary_key"], f"{key}.primary_key", columns)
        if "csv" in feed:
            if fmt != "csv":
                self.fail(f"{key}.csv", "is for feeds whose format is csv")
            csv = self.table(feed["csv"], f"{key}.csv", set(), {"delimiter", "header"})
            if "delimiter" in csv and (not isinstance(csv["delimiter"], str) or len(csv["delimiter"]) != 1):
                self.fail(f"{key}.csv.delimiter", "must be one character")
        event = self.table(feed["event_time"], f"{key}.event_time", set(),
                           {"column", "unit", "parts", "tolerance_seconds"})
        if ("column" in event) == ("parts" in event):
            self.fail(f"{key}.event_time", "declares either column (a timestamp) or parts (date and time columns)")
        if "column" in event:
            self.names([event["column"]], f"{key}.event_time.column", columns)
            self.string(event.get("unit", "iso"), f"{key}.event_time.unit", TIME_UNITS)
        else:
            parts = self.table(event["parts"], f"{key}.event_time.parts", {"year", "month", "day"},
                               set(TIME_PARTS))
            if "hour" in parts and "hhmm" in parts:
                self.fail(f"{key}.event_time.parts", "declares hour or hhmm, not both")
            for part, column in parts.items():
                self.names([column], f"{key}.event_time.parts.{part}", columns)
        if "tolerance_seconds" in event:
            self.number(event["tolerance_seconds"], f"{key}.event_time.tolerance_seconds", 0)

    def feature_view(self, index: int, view: Any, feeds: dict, columns: dict) -> dict[str, str]:
        key = f"feature_views[{index}]"
        view = self.table(view, key, {"name", "feed", "features", "entities"}, {"ttl_seconds"})
        self.string(view["name"], f"{key}.name")
        feed = self.string(view["feed"], f"{key}.feed", tuple(feeds))
        feed_columns = feeds[feed]["columns"]
        self.names(view["features"], f"{key}.features", feed_columns)
        clash = sorted(set(view["features"]) & set(columns))
        if clash:
            self.fail(f"{key}.features", f"{', '.join(clash)} is also a column of the main feed")
        if not isinstance(view["entities"], list) or not view["entities"]:
            self.fail(f"{key}.entities", "must be a non-empty array of tables")
        for number, entity in enumerate(view["entities"]):
            ekey = f"{key}.entities[{number}]"
            entity = self.table(entity, ekey, {"name", "row", "feed"})
            self.string(entity["name"], f"{ekey}.name")
            for side, side_columns in (("row", columns), ("feed", feed_columns)):
                self.key_derivation(entity[side], f"{ekey}.{side}", side_columns)
        if "ttl_seconds" in view:
            self.number(view["ttl_seconds"], f"{key}.ttl_seconds", 0)
        return {name: feed_columns[name] for name in view["features"]}

    def key_derivation(self, derivation: Any, key: str, columns: dict) -> None:
        """A join key from a row: a column as it is, or the local hour ``YYYY-MM-DDTHH`` of date parts."""
        derivation = self.table(derivation, key, set(), {"column", "hour_of"})
        if ("column" in derivation) == ("hour_of" in derivation):
            self.fail(key, "declares either column or hour_of")
        if "column" in derivation:
            self.names([derivation["column"]], f"{key}.column", columns)
        else:
            parts = self.table(derivation["hour_of"], f"{key}.hour_of", {"month", "day"},
                               {"year", "hour", "hhmm"})
            if ("hour" in parts) == ("hhmm" in parts):
                self.fail(f"{key}.hour_of", "declares hour or hhmm (one of them)")
            for part, column in parts.items():
                self.names([column], f"{key}.hour_of.{part}", columns)

    @staticmethod
    def label_sources(label: dict) -> list[str]:
        if "expression" in label:
            return expression_names(label["expression"])
        return [label["column"]] if "column" in label else []

    def label(self, label: Any, columns: dict) -> str:
        label = self.table(label, "label", {"name", "task"}, {"column", "threshold", "op", "values", "expression"})
        self.string(label["name"], "label.name")
        task = self.string(label["task"], "label.task", TASKS)
        if label["name"] in columns:
            self.fail("label.name", f"{label['name']!r} is already a column of the main feed")
        forms = [form for form in ("threshold", "values", "expression") if form in label]
        if len(forms) > 1:
            self.fail("label", f"declares {' and '.join(forms)}: one rule only")
        if "expression" in label:
            if "column" in label:
                self.fail("label.column", "is not used with an expression (the expression names its columns)")
            try:
                names = expression_names(self.string(label["expression"], "label.expression"))
            except SpecError as error:
                self.fail("label.expression", str(error))
            for name in names:
                if name not in columns:
                    self.fail("label.expression", f"{name!r} is not a column of the main feed")
        else:
            if "column" not in label:
                self.fail("label", "declares column (with threshold, values, or alone for regression) or expression")
            self.names([label["column"]], "label.column", columns)
            if "threshold" in label:
                self.number(label["threshold"], "label.threshold")
                self.string(label.get("op", ">="), "label.op", tuple(COMPARISONS))
            elif "op" in label:
                self.fail("label.op", "goes with threshold")
            if "values" in label and (not isinstance(label["values"], list) or not label["values"]):
                self.fail("label.values", "must be a non-empty list")
            if task == "binary_classification" and not forms:
                self.fail("label", "a binary label needs a rule: threshold, values or expression")
        if task == "regression" and ("threshold" in label or "values" in label):
            self.fail("label", "a regression target is a column or an expression, not a threshold or a set")
        return task

    def checks(self, checks: Any, columns: dict, joined: dict) -> None:
        checks = self.table(checks, "checks", set(), {"span", "values", "fatal_drift"})
        fatal = self.table(checks.get("fatal_drift", {}), "checks.fatal_drift", set(), None)
        for name, value in fatal.items():
            if name not in joined:
                self.fail(f"checks.fatal_drift.{name}", "is not a column of the main feed or a feature view")
            # Both measures (Jensen-Shannon divergence, L-infinity distance) lie in [0, 1].
            self.number(value, f"checks.fatal_drift.{name}", 0, 1)
        span = self.table(checks.get("span", {}), "checks.span", set(),
                          {"min_rows_fraction", "max_rows_fraction", "max_label_rate_change",
                           "max_missing_rate_change"})
        for name, value in span.items():
            self.number(value, f"checks.span.{name}", 0)
        values = checks.get("values", [])
        if not isinstance(values, list):
            self.fail("checks.values", f"must be an array of tables, got {_kind(values)}")
        for index, check in enumerate(values):
            check = self.table(check, f"checks.values[{index}]", {"check", "columns"})
            self.string(check["check"], f"checks.values[{index}].check", VALUE_CHECKS)
            self.names(check["columns"], f"checks.values[{index}].columns", columns)

    def model(self, model: Any, task: str) -> None:
        model = self.table(model, "model", {"estimator"},
                           {"hyperparameters", "pipeline_parameters", "categorical", "numeric"})
        estimator = self.string(model["estimator"], "model.estimator")
        if not re.fullmatch(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*", estimator):
            self.fail("model.estimator", f"{estimator!r} must be an import path, module.Class")
        hyper = self.table(model.get("hyperparameters", {}), "model.hyperparameters", set(), None)
        for name, value in hyper.items():
            if not isinstance(value, (bool, int, float, str, list)):
                self.fail(f"model.hyperparameters.{name}",
                          f"must be a number, string, bool or list, got {_kind(value)}")
        params = self.names(model.get("pipeline_parameters", []), "model.pipeline_parameters", hyper,
                            "hyperparameter", allow_empty=True)
        for index, name in enumerate(params):
            if isinstance(hyper[name], (bool, list, str)):
                self.fail(f"model.pipeline_parameters[{index}]",
                          f"{name!r} must be a number to be a pipeline parameter")
        categorical = self.table(model.get("categorical", {}), "model.categorical", set(), {"encoding", "indices_as"})
        self.string(categorical.get("encoding", "ordinal"), "model.categorical.encoding", CATEGORICAL_ENCODINGS)
        if "indices_as" in categorical:
            self.string(categorical["indices_as"], "model.categorical.indices_as")
        numeric = self.table(model.get("numeric", {}), "model.numeric", set(), {"transform"})
        self.string(numeric.get("transform", "passthrough"), "model.numeric.transform", NUMERIC_TRANSFORMS)


def _effect_default(metric: dict) -> dict:
    """An experiment's ``min_effect`` when the spec sets none: the metric's change threshold (when above 0)."""
    return {"min_effect": metric["max_change"]} if metric["max_change"] > 0 else {}


def _kind(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__) + (f" ({value!r})" if isinstance(
                value, (str, int, float)) and not isinstance(value, bool) else "")


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: ``python -m components.dataset_spec SPEC [--get KEY]``: check a spec, or print one of its values.

    Exit status 1 with the problem (file, key, what is wrong) when the spec is not valid.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m components.dataset_spec", description=main.__doc__)
    parser.add_argument("spec", help="the spec file (spec.toml)")
    parser.add_argument("--get", help="a dotted key to print, e.g. serving.model_name")
    args = parser.parse_args(argv)
    try:
        spec = DatasetSpec.load(args.spec)
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.get:
        value: Any = spec.raw
        for part in args.get.split("."):
            if not isinstance(value, dict) or part not in value:
                print(f"error: {args.spec}: {args.get}: not set", file=sys.stderr)
                return 1
            value = value[part]
        print(value if isinstance(value, str) else json.dumps(value))
        return 0
    print(f"{args.spec}: a valid spec of {spec.name} ({spec.task}, {len(spec.features)} features, "
          f"{len(spec.feature_views)} feature view(s), spans by {spec.granularity})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
