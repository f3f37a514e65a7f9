"""The loop on a cluster: triggers become KFP runs through the real ``kfp.Client``, against a STAND-IN of
the KFP v2beta1 REST API (kfp_api_stand_in.py; no KFP server runs here)."""

import json
import os

import pytest
from kfp_api_stand_in import KfpApiStandIn

from pipelines.ct import deliver
from pipelines.loop.coordinator import RunCoordinator, StartError
from pipelines.loop.kfp_launcher import IN_FLIGHT, KfpLauncher
from pipelines.loop.triggers import Trigger

SPANS = ["2013-01", "2013-02", "2013-03", "2013-04", "2013-05"]


@pytest.fixture
def api():
    with KfpApiStandIn() as stand_in:
        deliver.deploy_pipeline(deliver.connect(stand_in.host), "abc123")
        yield stand_in


def _launcher(api, state_dir, sleep=lambda seconds: None, **extra):
    return KfpLauncher(deliver.connect(api.host), str(state_dir), "abc123", lambda: SPANS,
                       {"registry_uri": "s3://models/ct", "serving_target": "kserve"}, sleep=sleep,
                       service_account="ct-pipeline-runner", **extra)


def _trigger(kind, reason="why"):
    return Trigger(kind, reason, "2026-11-30T06:00:00")


def test_a_batch_of_triggers_becomes_one_run_with_the_window_and_the_reason(api, tmp_path):
    outcome = _launcher(api, tmp_path)([_trigger("drift", "temp 0.3"), _trigger("schedule")])
    assert outcome["succeeded"] and outcome["window"] == "2013-02:2013-05" and outcome["test_span"] == "2013-05"
    [run] = api.runs.values()
    parameters = run["runtime_config"]["parameters"]
    assert parameters["train_spans"] == "2013-02:2013-04" and parameters["test_span"] == "2013-05"
    assert parameters["trigger"].startswith("drift+schedule") and parameters["git_sha"] == "abc123"
    assert parameters["registry_uri"] == "s3://models/ct" and run["service_account"] == "ct-pipeline-runner"
    assert not os.path.exists(tmp_path / IN_FLIGHT)


def test_single_flight_holds_across_a_restart(api, tmp_path):
    def crash(seconds):
        raise KeyboardInterrupt("the watcher's pod is killed while its run goes on")

    with pytest.raises(KeyboardInterrupt):
        _launcher(api, tmp_path, sleep=crash)([_trigger("new_data")])
    assert json.loads((tmp_path / IN_FLIGHT).read_text())["run_id"] in api.runs
    restarted = _launcher(api, tmp_path)  # a new pod, the same volume
    outcome = restarted([_trigger("schedule")])
    first, second = api.runs.values()
    assert outcome["resumed"]["run_id"] == first["run_id"] and outcome["resumed"]["state"] == "SUCCEEDED"
    assert second["running_at_create"] == []  # the first run had finished before the second was created
    assert outcome["run_id"] == second["run_id"] and len(api.runs) == 2


def test_refusals_are_start_errors_that_the_coordinator_retries_and_keeps_pending(api, tmp_path):
    launcher = _launcher(api, tmp_path / "state", pipeline_name="no-such-pipeline")
    with pytest.raises(StartError, match="make deploy-pipeline"):
        launcher([_trigger("schedule")])
    coordinator = RunCoordinator(str(tmp_path / "state"), launcher, attempts=2, backoff_seconds=0,
                                 sleep=lambda s: None, log=lambda line: None)
    coordinator.fire(_trigger("schedule"))
    assert coordinator.run_pending() == [] and coordinator.has_pending()
    coordinator.launch = _launcher(api, tmp_path / "state")
    [outcome] = coordinator.run_pending()
    assert outcome["succeeded"] and not coordinator.has_pending() and len(api.runs) == 1


def test_a_failed_run_is_reported_failed(api, tmp_path):
    api.final_state = "FAILED"
    outcome = _launcher(api, tmp_path)([_trigger("on_demand")])
    assert outcome["state"] == "FAILED" and not outcome["succeeded"] and outcome["exit_code"] == 1


def test_the_watcher_closes_the_monitor_window_on_its_schedule(tmp_path):
    import datetime

    from pipelines.loop.triggers import TriggerPolicy
    from pipelines.loop.watch import Watcher, watcher_health

    closed = []
    watcher = Watcher(str(tmp_path), TriggerPolicy(schedule_cron=""), lambda: [], close_window=closed.append,
                      close_cron="0 0 0 * * *")
    start = datetime.datetime(2026, 11, 30, 22, 0, 0)
    watcher.tick(start)  # the first check starts the clock: no catch-up
    watcher.tick(start + datetime.timedelta(hours=1))
    assert closed == []
    watcher.tick(start + datetime.timedelta(hours=2, minutes=1))  # midnight passed
    watcher.tick(start + datetime.timedelta(hours=3))
    assert closed == ["20261201T000100"]
    restarted = Watcher(str(tmp_path), TriggerPolicy(schedule_cron=""), lambda: [], close_window=closed.append,
                        close_cron="0 0 0 * * *")
    restarted.tick(start + datetime.timedelta(hours=4))  # a restart does not close again
    assert closed == ["20261201T000100"]
    assert watcher_health(str(tmp_path), max_age=60) == 0 and watcher_health(str(tmp_path / "none"), 60) == 1


def test_the_watcher_passes_the_mounted_pipeline_defaults_as_run_parameters(api, tmp_path, monkeypatch):
    """--params-dir: a ConfigMap as Kubernetes mounts it (key files as links into ..data, dot entries skipped);
    KEY=VALUE arguments win; a folder that is not there is refused by name."""
    from components.dataset_spec import DatasetSpec
    from pipelines.examples import DEFAULT_SPEC
    from pipelines.loop.watch import main

    spec = DatasetSpec.load(DEFAULT_SPEC)
    source = tmp_path / "source"
    for span in SPANS:
        (source / span).mkdir(parents=True)
        (source / span / spec.feeds[spec.main_feed].file).write_bytes(b"")
    mounted = tmp_path / "defaults"
    data = mounted / "..2026_12_05_00_00_00.000000001"
    data.mkdir(parents=True)
    for key, value in {"namespace": "team-a", "serving_target": "kserve", "kserve_version": "0.16"}.items():
        (data / key).write_text(value)
        os.symlink(f"..data/{key}", mounted / key)
    os.symlink(data.name, mounted / "..data")
    import functools

    # No wait between the polls of the run's state.
    monkeypatch.setattr("pipelines.loop.kfp_launcher.KfpLauncher", functools.partial(KfpLauncher,
                                                                                      sleep=lambda seconds: None))
    state = tmp_path / "state"
    argv = ["--launcher", "kfp", "--kfp-host", api.host, "--pipeline-version", "abc123", "--state", str(state),
            "--spec", DEFAULT_SPEC, "--source", str(source), "--params-dir", str(mounted),
            "trigger", "--reason", "test", "kserve_version=0.15"]
    assert main(argv) == 0
    [run] = api.runs.values()
    parameters = run["runtime_config"]["parameters"]
    assert parameters["namespace"] == "team-a" and parameters["serving_target"] == "kserve"
    assert parameters["kserve_version"] == "0.15"  # the argument won
    assert not any(key.startswith(".") for key in parameters)
    with pytest.raises(SystemExit):
        main([*argv[:argv.index("--params-dir") + 1], str(tmp_path / "none"), "trigger"])
