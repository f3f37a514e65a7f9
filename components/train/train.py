"""Training logic: one sklearn Pipeline holds preprocessing and the estimator the dataset spec names.

Serving loads the same Pipeline, so the features it is given go through the
transformations training used: no training/serving skew by construction.
"""

from __future__ import annotations

from typing import Any, Optional

from components import model_files
from components.dataset_spec import DatasetSpec
from components.kfp_io import ComponentError
from components.spans import SPAN_COLUMN


def build_pipeline(spec: DatasetSpec, hyperparameters: Optional[dict[str, Any]] = None):
    """Builds the untrained model the spec declares: preprocessing by feature type, then its estimator.

    Categorical features are ordinal-encoded (unknown and missing categories as -1, handled by
    the model as missing, so a new category at serving time does not crash a prediction) or
    one-hot encoded; numeric ones pass through or are standardized. Hyperparameters are the
    spec's, overridden by ``hyperparameters``.

    Raises:
        ComponentError: The estimator cannot be imported or does not take a hyperparameter.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    model = spec.model
    categorical = model.get("categorical", {})
    if categorical.get("encoding", "ordinal") == "ordinal":
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    else:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    numeric = "passthrough" if model.get("numeric", {}).get("transform", "passthrough") == "passthrough" \
        else StandardScaler()
    parts = [("categorical", encoder, spec.categorical)] if spec.categorical else []
    parts += [("numeric", numeric, spec.numeric)] if spec.numeric else []
    encode = ColumnTransformer(parts, verbose_feature_names_out=False)
    arguments = {**model.get("hyperparameters", {}), **(hyperparameters or {})}
    if categorical.get("indices_as") and spec.categorical:
        arguments[categorical["indices_as"]] = list(range(len(spec.categorical)))
    estimator_class = import_estimator(model["estimator"])
    try:
        estimator = estimator_class(**arguments)
    except TypeError as error:
        raise ComponentError(f"model.estimator {model['estimator']} refuses the spec's hyperparameters: "
                             f"{error}") from None
    return Pipeline([("encode", encode), ("model", estimator)])


def import_estimator(path: str):
    """The estimator class named by an import path (``sklearn.ensemble.HistGradientBoostingClassifier``).

    Raises:
        ComponentError: It cannot be imported, or is not a class with ``fit``.
    """
    import importlib

    module_name, _, class_name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ComponentError(f"model.estimator {path} cannot be imported in the train runtime: {error}") from None
    if not isinstance(found, type) or not hasattr(found, "fit"):
        raise ComponentError(f"model.estimator {path} is not an estimator class (no fit method)")
    return found


def predictions(model, frame, spec: DatasetSpec):
    """What the model says of each row: the positive class' probability, or the regression value."""
    from components.model_metrics import predictions as predicted

    return predicted(model, frame, spec.features, spec.task)


def primary_metric(spec: DatasetSpec, labels, values) -> float:
    """The spec's primary metric (NaN when it cannot be computed, e.g. AUC on a single class)."""
    from components.model_metrics import metric_value

    return metric_value(spec.metric["primary"], labels, values)


def train(train_frame, eval_frame, spec: DatasetSpec, hyperparameters: Optional[dict[str, Any]] = None):
    """Fits the spec's pipeline on the training rows.

    Returns:
        ``(pipeline, metrics)`` with the primary metric on the train and eval splits
        (``train_auc``, ``eval_auc`` for a spec whose primary metric is AUC).
    """
    pipeline = build_pipeline(spec, hyperparameters)
    pipeline.fit(train_frame[spec.features], train_frame[spec.label])
    name = spec.metric["primary"]
    metrics = {
        f"train_{name}": primary_metric(spec, train_frame[spec.label], predictions(pipeline, train_frame, spec)),
        f"eval_{name}": primary_metric(spec, eval_frame[spec.label], predictions(pipeline, eval_frame, spec))
        if len(eval_frame) else float("nan"),
        "train_rows": int(len(train_frame)),
        "eval_rows": int(len(eval_frame)),
    }
    return pipeline, metrics


def lookup_block(train_frame, spec: DatasetSpec) -> Optional[dict[str, Any]]:
    """What serving looks up in the feature store, and by what (``model.json``'s ``lookup``); None without views.

    Per view: its features and each entity's row derivation (the spec's). A caller sends the
    model's features, not the year of a date: an ``hour_of`` key's ``year`` column takes the year
    of the newest training span (``defaults``; the spec's validation admits no other unsent key column).
    """
    from components.spans import span_start

    if not spec.feature_views:
        return None
    newest = span_start(str(train_frame[SPAN_COLUMN].max()), spec.granularity)
    defaults = {}
    for view in spec.feature_views:
        for entity in view.entities:
            year = entity["row"].get("hour_of", {}).get("year")
            if year and year not in spec.features:
                defaults[year] = newest.year
    return {"features": spec.looked_up_features, "defaults": defaults,
            "views": [{"name": view.name, "features": list(view.features),
                       "entities": [{"name": e["name"], "row": e["row"]} for e in view.entities]}
                      for view in spec.feature_views]}


def save(pipeline, model_dir: str, spec: DatasetSpec, info: dict[str, Any]) -> None:
    """Writes ``model.joblib`` and ``model.json`` (features, label, task, library versions, ``info``)."""
    import os

    import joblib
    import numpy
    import sklearn

    os.makedirs(model_dir, exist_ok=True)
    joblib.dump(pipeline, model_files.model_path(model_dir))
    if spec.schema_text is not None:
        with open(model_files.schema_path(model_dir), "w", encoding="utf-8") as handle:
            handle.write(spec.schema_text)
    model_files.write_info(model_dir, {
        "features": spec.features,
        "categorical_features": spec.categorical,
        "numeric_features": spec.numeric,
        "label": spec.label,
        "task": spec.task,
        **({"positive_class": 1} if spec.task == "binary_classification" else {}),
        "framework": {"scikit-learn": sklearn.__version__, "numpy": numpy.__version__},
        **info,
    })


def save_reference(train_frame, model_dir: str, spec: DatasetSpec, rows: int = model_files.REFERENCE_ROWS,
                   seed: int = 0) -> int:
    """Writes a seeded sample of the training features beside the model (the monitor's skew reference).

    Returns:
        The number of rows written.
    """
    sample = train_frame[spec.features]
    if len(sample) > rows:
        sample = sample.sample(n=rows, random_state=seed)
    sample.reset_index(drop=True).to_parquet(model_files.reference_path(model_dir), index=False)
    return len(sample)


def serving_samples(model, frame, spec: DatasetSpec, count: int = 200, seed: int = 0) -> dict[str, Any]:
    """Rows for infra validation with what the training runtime predicts for them.

    Taken from the eval rows, here in train: infra validation then depends on this step's outputs
    only, so it is reused from the cache when a rerun trains the same model. Missing values become
    ``None`` (JSON null), as a client would send them. ``probabilities`` for a classifier,
    ``predictions`` for a regressor.
    """
    import math

    sample = frame.sample(n=min(count, len(frame)), random_state=seed)
    features = sample[spec.features]
    instances = [
        {name: (None if value is None or (isinstance(value, float) and math.isnan(value)) else
                (value.item() if hasattr(value, "item") else value))
         for name, value in row.items()}
        for row in features.to_dict(orient="records")
    ]
    key = "probabilities" if spec.task == "binary_classification" else "predictions"
    return {"instances": instances, key: [float(p) for p in predictions(model, sample, spec)]}
