"""Each trigger fires on its condition and not otherwise; one run at a time, coalesced, retried."""

import datetime
import threading
import time

import pytest

from components.spans import window_for
from pipelines.loop.coordinator import RunCoordinator, StartError
from pipelines.loop.triggers import (
    Trigger,
    TriggerPolicy,
    check_degradation,
    check_distribution,
    check_new_data,
    check_schedule,
    check_window,
    trigger_label,
)
from pipelines.loop.watch import Watcher

NOW = datetime.datetime(2013, 7, 1, 0, 0, 30)


def _window(**values):
    """A monitor window as the monitor reports it (metric_drop: how much worse than blessed, positive: worse)."""
    base = {"window": "2013-06", "previous_window": "2013-05", "model_version": "v0003", "metric": "auc",
            "metric_value": 0.70, "blessed_metric": 0.74, "labeled_rows": 1000, "drift": {"temp": 0.15, "dest": 0.05},
            "skew": {"temp": 0.25, "carrier": 0.02}}
    window = {**base, **values}
    if "metric_drop" not in values and window["metric_value"] is not None and window["blessed_metric"] is not None:
        sign = -1 if window["metric"] in ("rmse", "mae") else 1
        window["metric_drop"] = sign * (window["blessed_metric"] - window["metric_value"])
    return window


def test_schedule_fires_once_per_due_time_and_never_catches_up():
    cron = "0 0 0 1 * *"  # first of the month, midnight
    assert check_schedule(cron, datetime.datetime(2013, 6, 30, 23, 59), NOW).kind == "schedule"
    assert check_schedule(cron, datetime.datetime(2013, 7, 1, 0, 0, 1), NOW) is None  # already past it
    assert check_schedule(cron, None, NOW) is None  # first check: no catch-up
    assert check_schedule("", datetime.datetime(2013, 1, 1), NOW) is None
    with pytest.raises(ValueError, match="cron"):
        TriggerPolicy(schedule_cron="every monday")


def test_new_data_fires_on_enough_new_spans_only():
    spans = ["2013-01", "2013-02", "2013-03", "2013-04"]
    assert check_new_data(spans, "2013-02", 2, NOW).reason == "2 new span(s): 2013-03, 2013-04"
    assert check_new_data(spans, "2013-03", 2, NOW) is None
    assert check_new_data(spans, "2013-03", 1, NOW).kind == "new_data"
    assert check_new_data(spans, "2013-04", 1, NOW) is None
    assert check_new_data(["2013-01"], None, 1, NOW) is None  # one span: nothing to test on
    assert check_new_data(spans, None, 0, NOW) is None  # off
    assert check_new_data(spans[:2], None, 3, NOW).reason == "first model: 2 spans and no run yet"


def test_degradation_fires_over_the_allowed_drop_with_enough_labels():
    policy = TriggerPolicy(max_metric_drop=0.03, min_labeled_rows=500)
    fired = check_degradation(_window(metric_value=0.70), policy, NOW)  # drop 0.04
    assert fired.kind == "degradation" and "AUC 0.7000" in fired.reason and "0.0400 worse" in fired.reason
    assert check_degradation(_window(metric_value=0.72), policy, NOW) is None  # drop 0.02
    assert check_degradation(_window(metric_value=0.60, labeled_rows=499), policy, NOW) is None
    assert check_degradation(_window(metric_value=None), policy, NOW) is None
    assert check_degradation(_window(blessed_metric=None), policy, NOW) is None


def test_a_regression_degrades_when_its_error_rises():
    """RMSE: lower is better; the monitor's metric_drop is the rise, in the label's unit (dollars)."""
    policy = TriggerPolicy(max_metric_drop=1.0, min_labeled_rows=500)
    fired = check_degradation(_window(metric="rmse", metric_value=4.5, blessed_metric=3.0), policy, NOW)
    assert fired.kind == "degradation" and "RMSE 4.5000" in fired.reason and "1.5000 worse" in fired.reason
    assert check_degradation(_window(metric="rmse", metric_value=3.5, blessed_metric=3.0), policy, NOW) is None
    assert check_degradation(_window(metric="rmse", metric_value=2.0, blessed_metric=3.0), policy, NOW) is None


def test_the_spec_s_monitoring_thresholds_are_the_policy_s_defaults():
    from components.dataset_spec import DatasetSpec
    from components.paths import REPO_ROOT

    fare = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/taxi_fare/spec.toml")
    policy = TriggerPolicy.from_spec(fare)
    assert (policy.max_metric_drop, policy.drift_threshold) == (fare.monitoring["max_metric_drop"],
                                                                 fare.monitoring["drift_threshold"])
    assert TriggerPolicy.from_spec(fare, max_metric_drop=2.5).max_metric_drop == 2.5


def test_drift_and_skew_fire_over_their_thresholds_on_watched_features():
    policy = TriggerPolicy(drift_threshold=0.1, skew_threshold=0.2)
    drift = check_distribution("drift", _window(), policy, NOW)
    assert drift.kind == "drift" and "temp 0.150 > 0.1" in drift.reason and "dest" not in drift.reason
    assert check_distribution("drift", _window(), TriggerPolicy(drift_threshold=0.16), NOW) is None
    assert check_distribution("skew", _window(), policy, NOW).kind == "skew"
    assert check_distribution("skew", _window(), TriggerPolicy(skew_threshold=0.3), NOW) is None
    assert check_distribution("drift", _window(), TriggerPolicy(drift_threshold=0.1, min_features=2), NOW) is None
    watched = TriggerPolicy(drift_threshold=0.1, skew_threshold=0.2, drift_features=("dest", "carrier"),
                            skew_features=("temp",))
    assert check_distribution("drift", _window(), watched, NOW) is None
    assert check_distribution("skew", _window(), watched, NOW).kind == "skew"
    assert check_distribution("drift", _window(drift={}), policy, NOW) is None  # first window: nothing to compare
    assert {t.kind for t in check_window(_window(), TriggerPolicy(max_metric_drop=0.03, drift_threshold=0.1,
                                                                 skew_threshold=0.2), NOW)} == {
        "degradation", "drift", "skew"}


def test_watcher_looks_at_each_window_once_and_remembers_the_tested_span(tmp_path):
    spans = ["2013-01", "2013-02"]
    status = {"windows": [_window()]}
    policy = TriggerPolicy(drift_threshold=0.1, skew_threshold=0.5, max_metric_drop=0.5)
    watcher = Watcher(str(tmp_path), policy, lambda: spans, lambda: status)
    assert sorted(t.kind for t in watcher.tick(NOW)) == ["drift", "new_data"]  # new data: the first model
    watcher.ran({"test_span": "2013-02", "deployed": True})
    assert watcher.tick(NOW + datetime.timedelta(days=1)) == []
    # A restarted watcher keeps what it saw.
    again = Watcher(str(tmp_path), policy, lambda: spans + ["2013-03"], lambda: status)
    assert [t.kind for t in again.tick(NOW + datetime.timedelta(days=2))] == ["new_data"]


def test_until_a_model_is_deployed_every_new_span_triggers(tmp_path):
    spans = ["2013-01", "2013-02"]
    watcher = Watcher(str(tmp_path), TriggerPolicy(new_data_min_spans=3), lambda: spans)
    assert [t.kind for t in watcher.tick(NOW)] == ["new_data"]
    watcher.ran({"test_span": "2013-02", "deployed": False})
    spans.append("2013-03")
    assert [t.kind for t in watcher.tick(NOW)] == ["new_data"]
    watcher.ran({"test_span": "2013-03", "deployed": True})
    spans.append("2013-04")
    assert watcher.tick(NOW) == []  # now three new spans are needed


def test_run_window_takes_the_newest_spans():
    assert window_for(["2013-01", "2013-02"], 3) == "2013-01:2013-02"
    assert window_for([f"2013-{m:02d}" for m in range(1, 8)], 3) == "2013-04:2013-07"
    assert window_for(["2013-01"], 3) is None
    batch = [Trigger("new_data", "1 new span(s): 2013-07"), Trigger("drift", "window 2013-06: temp")]
    assert trigger_label(batch) == "drift+new_data: 1 new span(s): 2013-07 | window 2013-06: temp"


def test_concurrent_triggers_never_run_twice_at_once_and_none_is_lost(tmp_path):
    running, overlap, batches, fired_count = [0], [0], [], [0]
    lock = threading.Lock()
    all_fired = threading.Event()

    def slow_launch(batch):
        with lock:
            running[0] += 1
            overlap[0] = max(overlap[0], running[0])
        # The first run lasts until every trigger has fired (bounded): what fires meanwhile must wait
        # and be coalesced into one next run, however the threads are scheduled on a busy machine.
        all_fired.wait(timeout=60)
        with lock:
            running[0] -= 1
            batches.append([t.reason for t in batch])
        return {"ok": True}

    coordinator = RunCoordinator(str(tmp_path), slow_launch, log=lambda line: None)

    def fire(number):
        coordinator.fire(Trigger("on_demand", f"t{number}"))
        with lock:
            fired_count[0] += 1
            if fired_count[0] == 20:
                all_fired.set()
        coordinator.run_pending()

    threads = [threading.Thread(target=fire, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    coordinator.run_pending()
    assert all_fired.is_set()
    assert overlap[0] == 1
    fired = sorted(reason for batch in batches for reason in batch)
    assert fired == sorted(f"t{n}" for n in range(20))  # each trigger in exactly one run
    assert 1 <= len(batches) <= 2  # coalesced: whatever fired during the first run is one next run
    assert not coordinator.has_pending()
    events = [e["event"] for e in coordinator.read_journal()]
    assert events.count("fired") == 20 and "coalesced" in events and events.count("run_finished") == len(batches)


def test_a_run_that_cannot_start_is_retried_then_kept_pending(tmp_path):
    attempts, lines, waits = [], [], []

    def flaky(batch):
        attempts.append(len(batch))
        if len(attempts) < 3:
            raise StartError("KFP API unreachable")
        return {"ok": True}

    coordinator = RunCoordinator(str(tmp_path), flaky, attempts=3, backoff_seconds=1, log=lines.append,
                                 sleep=waits.append)
    coordinator.fire(Trigger("schedule", "due"))
    assert coordinator.run_pending() and attempts == [1, 1, 1] and waits == [1, 2]
    assert any("retry 2 of 3 in 1 s" in line for line in lines)

    def down(batch):
        raise StartError("KFP API unreachable")

    stuck = RunCoordinator(str(tmp_path / "b"), down, attempts=2, backoff_seconds=0, log=lines.append,
                           sleep=lambda s: None)
    stuck.fire(Trigger("new_data", "2013-05"))
    assert stuck.run_pending() == [] and stuck.has_pending()
    assert any("stay pending" in line for line in lines)


def test_watcher_journals_each_online_experiment_decision_once_across_restarts(tmp_path):
    decision = {"candidate_version": "v0003", "production_version": "v0002", "outcome": "promote",
                "reason": "the candidate's auc is better", "started_at": "2026-12-05T09:00:00Z",
                "looked_at": "2026-12-05T09:20:00Z"}
    status = {"windows": [], "experiment_decisions": [decision]}
    seen = []
    policy = TriggerPolicy(schedule_cron="")
    watcher = Watcher(str(tmp_path), policy, lambda: [], lambda: status, on_experiment=seen.append)
    watcher.tick(datetime.datetime(2026, 12, 5, 10))
    watcher.tick(datetime.datetime(2026, 12, 5, 11))
    Watcher(str(tmp_path), policy, lambda: [], lambda: status, on_experiment=seen.append).tick(
        datetime.datetime(2026, 12, 5, 12))
    assert seen == [decision]
    later = {**decision, "candidate_version": "v0004", "outcome": "roll_back", "started_at": "2026-12-06T09:00:00Z"}
    status["experiment_decisions"].append(later)
    watcher.tick(datetime.datetime(2026, 12, 6, 12))
    assert seen == [decision, later]
