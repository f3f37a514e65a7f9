from components.validate_model.validate_model import judge


def test_first_model_is_judged_by_value_threshold_alone():
    blessed, reasons = judge({"auc": 0.70}, None, min_auc=0.6, max_auc_drop=0.01)
    assert blessed and "no model in production" in reasons[1]
    blessed, reasons = judge({"auc": 0.52}, None, min_auc=0.6, max_auc_drop=0.01)
    assert not blessed and "0.5200 < 0.6000" in reasons[0]


def test_change_threshold_against_production():
    assert judge({"auc": 0.695}, {"auc": 0.70}, 0.6, 0.01)[0]  # within the allowed drop
    blessed, reasons = judge({"auc": 0.68}, {"auc": 0.70}, 0.6, 0.01)
    assert not blessed and "failed" in reasons[1] and "production 0.7000" in reasons[1]


def test_good_value_cannot_hide_a_regression_and_vice_versa():
    assert not judge({"auc": 0.55}, {"auc": 0.50}, 0.6, 0.01)[0]
    assert not judge({"auc": float("nan")}, None, 0.6, 0.01)[0]
