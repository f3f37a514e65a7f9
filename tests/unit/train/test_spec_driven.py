"""The training side driven by a dataset spec: label rules, another dataset's columns, a regression."""

import numpy as np
import pandas as pd
import pytest

from components.dataset_spec import DatasetSpec
from components.evaluate.evaluate import evaluate
from components.kfp_io import ComponentError
from components.labels import label_values
from components.paths import REPO_ROOT
from components.prepare.prepare import add_label, describe, split
from components.train.train import build_pipeline, save, serving_samples, train

TAXI = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/taxi/spec.toml")
TAXI_FARE = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/taxi_fare/spec.toml")
FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")


def make_trips(rows: int, span: str, seed: int = 0) -> pd.DataFrame:
    """Trips with the taxi spec's columns; fares follow the distance, card payers tip more."""
    rng = np.random.default_rng(seed)
    miles = rng.exponential(3, rows)
    frame = pd.DataFrame({
        "pickup_community_area": rng.integers(1, 78, rows).astype(float),
        "trip_start_month": rng.integers(1, 13, rows), "trip_start_hour": rng.integers(0, 24, rows),
        "trip_start_day": rng.integers(1, 8, rows), "trip_start_timestamp": rng.integers(1.36e9, 1.48e9, rows),
        "pickup_latitude": rng.normal(41.9, 0.05, rows), "pickup_longitude": rng.normal(-87.65, 0.05, rows),
        "dropoff_latitude": rng.normal(41.9, 0.05, rows), "dropoff_longitude": rng.normal(-87.65, 0.05, rows),
        "trip_miles": miles, "pickup_census_tract": np.nan, "dropoff_census_tract": np.nan,
        "payment_type": rng.choice(["Cash", "Credit Card"], rows),
        "company": rng.choice(["Taxi Affiliation Services", None, "Flash Cab"], rows),
        "trip_seconds": miles * 240 + rng.normal(0, 60, rows), "dropoff_community_area": rng.integers(1, 78, rows),
    })
    frame["fare"] = 3.25 + 2.25 * miles + rng.normal(0, 0.5, rows)
    card = frame["payment_type"] == "Credit Card"
    frame["tips"] = np.where(card & (rng.uniform(size=rows) < 0.8), 0.25 * frame["fare"], 0.0)
    frame.loc[frame.index[:4], "fare"] = np.nan  # no fare: no label
    frame["span"] = span
    return frame


@pytest.fixture(scope="module")
def trips():
    return pd.concat([make_trips(900, f"2014-Q{q}", seed=q) for q in (1, 2, 3)], ignore_index=True)


def test_each_rule_form_labels_rows_and_a_missing_source_leaves_no_label():
    frame = pd.DataFrame({"tips": [3.0, 1.0, np.nan, 0.0], "fare": [10.0, 10.0, 10.0, np.nan],
                          "payment_type": ["Cash", "Credit Card", "Cash", "Pcard"]})
    assert label_values(TAXI, frame).tolist()[:2] == [1.0, 0.0]
    assert label_values(TAXI, frame).isna().tolist() == [False, False, True, True]
    values = DatasetSpec({**TAXI_FARE.raw, "metric": {"primary": "auc", "threshold": 0.5, "max_change": 0.1},
                          "label": {"name": "card", "task": "binary_classification",
                                                "column": "payment_type", "values": ["Credit Card", "Pcard"]}})
    assert label_values(values, frame).tolist() == [0.0, 1.0, 0.0, 1.0]
    assert label_values(TAXI_FARE, frame).tolist()[:3] == [10.0, 10.0, 10.0]
    flights = pd.DataFrame({"arr_delay": [15.0, 14.9, np.nan, -3.0]})
    assert label_values(FLIGHTS, flights).tolist()[:2] == [1.0, 0.0]
    assert label_values(FLIGHTS, flights).isna().tolist() == [False, False, True, False]


def test_a_second_dataset_trains_and_evaluates_with_its_own_slices_and_classes(trips):
    labelled = add_label(trips, TAXI)
    assert len(labelled) == len(trips) - trips["fare"].isna().sum() == len(trips) - 12
    assert labelled[TAXI.label].dtype == "int64"
    train_frame, eval_frame, test_frame = split(labelled, TAXI, "2014-Q3", 0.2)
    assert list(train_frame.columns) == TAXI.features + [TAXI.label, "span"]
    model, metrics = train(train_frame, eval_frame, TAXI)
    assert metrics["eval_auc"] > 0.8  # the card payers tip
    result = evaluate(model, test_frame, TAXI)
    assert result["metric"] == "auc" and set(result["candidate"]["slices"]) == {"payment_type", "trip_start_hour"}
    assert set(result["candidate"]["slices"]["payment_type"]) == {"Cash", "Credit Card"}


def test_a_regression_is_fitted_scored_and_sampled_by_its_value(trips, tmp_path):
    from components import model_files

    labelled = add_label(trips, TAXI_FARE)
    assert labelled[TAXI_FARE.label].dtype == "float64"
    assert "label_mean" in describe(labelled, TAXI_FARE)
    train_frame, eval_frame, test_frame = split(labelled, TAXI_FARE, "2014-Q3", 0.2)
    model, metrics = train(train_frame, eval_frame, TAXI_FARE)
    assert set(metrics) == {"train_rmse", "eval_rmse", "train_rows", "eval_rows"} and metrics["eval_rmse"] < 2.0
    result = evaluate(model, test_frame, TAXI_FARE)
    candidate = result["candidate"]
    assert {"rmse", "mae", "r2", "rows"} <= set(candidate) and "auc" not in candidate
    assert candidate["r2"] > 0.9 and candidate["mae"] <= candidate["rmse"]
    assert set(candidate["slices"]["trip_start_hour"]["12"]) >= {"rmse", "mae", "r2"}
    samples = serving_samples(model, test_frame, TAXI_FARE, count=20)
    assert len(samples["predictions"]) == 20 and "probabilities" not in samples
    np.testing.assert_array_equal(samples["predictions"],
                                  model.predict(pd.DataFrame(samples["instances"])[TAXI_FARE.features]))
    save(model, str(tmp_path), TAXI_FARE, {})
    info = model_files.read_info(str(tmp_path))
    assert info["task"] == "regression" and "positive_class" not in info and info["label"] == "fare_usd"


def test_the_estimator_and_its_hyperparameters_come_from_the_spec():
    pipeline = build_pipeline(TAXI, {"max_iter": 7})
    estimator = pipeline.named_steps["model"]
    assert type(estimator).__name__ == "HistGradientBoostingClassifier"
    assert estimator.max_iter == 7 and estimator.max_leaf_nodes == 15 and estimator.early_stopping is False
    assert estimator.categorical_features == [0, 1]
    other = DatasetSpec({**TAXI.raw, "model": {"estimator": "sklearn.linear_model.LogisticRegression",
                                               "hyperparameters": {"C": 0.5},
                                               "categorical": {"encoding": "one_hot"},
                                               "numeric": {"transform": "standard_scale"}}})
    assert build_pipeline(other).named_steps["model"].C == 0.5
    missing = DatasetSpec({**TAXI.raw, "model": {"estimator": "sklearn.ensemble.NoSuchForest"}})
    with pytest.raises(ComponentError, match="model.estimator sklearn.ensemble.NoSuchForest cannot be imported"):
        build_pipeline(missing)
    wrong = DatasetSpec({**TAXI.raw, "model": {"estimator": "sklearn.linear_model.LogisticRegression",
                                               "hyperparameters": {"max_leaf_nodes": 3}}})
    with pytest.raises(ComponentError, match="refuses the spec's hyperparameters"):
        build_pipeline(wrong)
