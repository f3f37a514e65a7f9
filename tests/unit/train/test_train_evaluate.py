import json

import numpy as np

from components import model_files
from components.dataset_spec import DatasetSpec
from components.evaluate.evaluate import confusion_matrix, evaluate, roc_curve_points
from components.model_files import load_model as load
from components.paths import REPO_ROOT
from components.prepare.prepare import add_label, split
from components.train.train import save, save_reference, serving_samples, train
from pipelines.examples.flights import dataset

FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")

PARAMS = {"learning_rate": 0.1, "max_iter": 50, "max_leaf_nodes": 15, "l2_regularization": 0.0}


def _splits(raw):
    return split(add_label(raw, FLIGHTS), FLIGHTS, "2013-03", 0.2)


def test_model_learns_the_signal_and_round_trips(raw, tmp_path):
    train_frame, eval_frame, test_frame = _splits(raw)
    pipeline, metrics = train(train_frame, eval_frame, FLIGHTS, PARAMS)
    assert metrics["eval_auc"] > 0.75
    save(pipeline, str(tmp_path / "m"), FLIGHTS, {"hyperparameters": PARAMS})
    info = model_files.read_info(str(tmp_path / "m"))
    assert info["features"] == dataset.FEATURES and info["framework"]["scikit-learn"]
    reloaded = load(str(tmp_path / "m"))
    assert np.array_equal(reloaded.predict_proba(test_frame[dataset.FEATURES]),
                          pipeline.predict_proba(test_frame[dataset.FEATURES]))


def test_reference_sample_holds_the_training_features_only(raw, tmp_path):
    import pandas as pd

    train_frame, _, _ = _splits(raw)
    written = save_reference(train_frame, str(tmp_path), FLIGHTS, rows=50)
    reference = pd.read_parquet(model_files.reference_path(str(tmp_path)))
    assert written == len(reference) == 50 and list(reference.columns) == dataset.FEATURES
    assert save_reference(train_frame.head(10), str(tmp_path), FLIGHTS, rows=50) == 10


def test_shuffled_labels_learn_nothing(raw):
    train_frame, eval_frame, test_frame = _splits(raw)
    shuffled = train_frame.copy()
    shuffled[dataset.LABEL] = np.random.default_rng(0).permutation(shuffled[dataset.LABEL].to_numpy())
    pipeline, _ = train(shuffled, eval_frame, FLIGHTS, PARAMS)
    assert abs(evaluate(pipeline, test_frame, FLIGHTS)["candidate"]["auc"] - 0.5) < 0.08


def test_evaluation_compares_candidate_and_baseline_on_the_same_rows(raw):
    train_frame, eval_frame, test_frame = _splits(raw)
    good, _ = train(train_frame, eval_frame, FLIGHTS, PARAMS)
    weak, _ = train(train_frame.head(60), eval_frame, FLIGHTS, {**PARAMS, "max_iter": 2})
    result = evaluate(good, test_frame, FLIGHTS, baseline=weak)
    assert result["candidate"]["rows"] == result["baseline"]["rows"] == len(test_frame)
    assert result["candidate"]["auc"] > result["baseline"]["auc"]
    assert set(result["candidate"]["slices"]["origin"]) == {"EWR", "JFK", "LGA"}
    assert evaluate(good, test_frame, FLIGHTS)["baseline"] is None


def test_dashboard_metrics_follow_kfp_formats(raw):
    train_frame, eval_frame, test_frame = _splits(raw)
    pipeline, _ = train(train_frame, eval_frame, FLIGHTS, PARAMS)
    labels = test_frame[dataset.LABEL].to_numpy()
    scores = pipeline.predict_proba(test_frame[dataset.FEATURES])[:, 1]
    roc = roc_curve_points(labels, scores, max_points=20)
    assert 2 <= len(roc) <= 21
    assert set(roc[0]) == {"confidenceThreshold", "falsePositiveRate", "recall"}
    assert roc[-1]["recall"] == 1.0 and roc[-1]["falsePositiveRate"] == 1.0
    matrix = confusion_matrix(labels, scores, FLIGHTS.raw["evaluation"]["class_names"])
    assert [a["displayName"] for a in matrix["annotationSpecs"]] == ["on_time", "delayed"]
    assert sum(sum(r["row"]) for r in matrix["rows"]) == len(labels)


def test_serving_samples_are_json_with_nulls_for_missing_values(raw):
    train_frame, eval_frame, test_frame = _splits(raw)
    pipeline, _ = train(train_frame, eval_frame, FLIGHTS, PARAMS)
    test_frame = test_frame.copy()
    test_frame.loc[test_frame.index[:3], "temp"] = float("nan")
    samples = serving_samples(pipeline, test_frame, FLIGHTS, count=len(test_frame))
    text = json.dumps(samples, allow_nan=False)  # strict JSON: no NaN
    assert '"temp": null' in text
    assert len(samples["instances"]) == len(samples["probabilities"]) == len(test_frame)
