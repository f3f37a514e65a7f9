import pytest

from components.dataset_spec import DatasetSpec
from components.kfp_io import ComponentError
from components.paths import REPO_ROOT
from components.prepare.prepare import add_label, describe, split
from pipelines.examples.flights import dataset

FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")


def test_label_is_arrival_delay_of_15_minutes_and_cancelled_rows_go(raw):
    labelled = add_label(raw, FLIGHTS)
    assert len(labelled) == len(raw) - raw["arr_delay"].isna().sum()
    assert (labelled[dataset.LABEL] == (labelled["arr_delay"] >= 15)).all()


def test_split_is_by_time_for_test_and_stable_by_hash_for_eval(raw):
    labelled = add_label(raw, FLIGHTS)
    train, evaluation, test = split(labelled, FLIGHTS, "2013-03", 0.2)
    assert set(test[dataset.SPAN_COLUMN]) == {"2013-03"}
    assert set(train[dataset.SPAN_COLUMN]) | set(evaluation[dataset.SPAN_COLUMN]) == {"2013-01", "2013-02"}
    assert 0.12 < len(evaluation) / (len(train) + len(evaluation)) < 0.28
    again_train, _, _ = split(labelled.sample(frac=1, random_state=3), FLIGHTS, "2013-03", 0.2)
    assert sorted(again_train.index) == sorted(train.index)  # same rows, whatever the order
    assert list(train.columns) == dataset.FEATURES + [dataset.LABEL, dataset.SPAN_COLUMN]
    assert describe(test, FLIGHTS)["spans"] == ["2013-03"]


def test_split_refuses_a_test_span_without_rows(raw):
    with pytest.raises(ComponentError, match="2013-09"):
        split(add_label(raw, FLIGHTS), FLIGHTS, "2013-09", 0.2)
    with pytest.raises(ComponentError, match="eval_fraction"):
        split(add_label(raw, FLIGHTS), FLIGHTS, "2013-03", 1.5)
