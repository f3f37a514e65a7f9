from components.validate_model.validate_model import judge


def _auc(candidate, baseline, threshold=0.6, max_change=0.01):
    return judge(candidate, baseline, "auc", "maximize", threshold, max_change)


def test_first_model_is_judged_by_value_threshold_alone():
    blessed, reasons = _auc({"auc": 0.70}, None)
    assert blessed and "no model in production" in reasons[1]
    blessed, reasons = _auc({"auc": 0.52}, None)
    assert not blessed and "AUC 0.5200 < 0.6000" in reasons[0]


def test_change_threshold_against_production():
    assert _auc({"auc": 0.695}, {"auc": 0.70})[0]  # within the allowed drop
    blessed, reasons = _auc({"auc": 0.68}, {"auc": 0.70})
    assert not blessed and "failed" in reasons[1] and "production 0.7000" in reasons[1]


def test_good_value_cannot_hide_a_regression_and_vice_versa():
    assert not _auc({"auc": 0.55}, {"auc": 0.50})[0]
    assert not _auc({"auc": float("nan")}, None)[0]


def test_a_metric_to_minimize_is_judged_the_other_way():
    rmse = lambda candidate, baseline: judge(candidate, baseline, "rmse", "minimize", 5.0, 0.5)  # noqa: E731
    blessed, reasons = rmse({"rmse": 4.0}, None)
    assert blessed and "RMSE 4.0000 <= 5.0000" in reasons[0]
    blessed, reasons = rmse({"rmse": 5.5}, None)
    assert not blessed and "RMSE 5.5000 > 5.0000" in reasons[0]
    assert rmse({"rmse": 4.4}, {"rmse": 4.0})[0]  # 0.4 worse: allowed
    blessed, reasons = rmse({"rmse": 4.6}, {"rmse": 4.0})
    assert not blessed and "rise +0.6000, allowed 0.5000): failed" in reasons[1]
    assert rmse({"rmse": 3.0}, {"rmse": 4.0})[0]  # better than production
