"""Pipeline delivery against a FAKE KFP API (an in-process stand-in for kfp.Client; no KFP server runs here)."""

import json
from types import SimpleNamespace as Obj

import pytest

from pipelines import deliver


class FakeKfpClient:
    """FAKE: the slice of kfp.Client that delivery uses, keeping pipelines, versions and recurring runs."""

    def __init__(self):
        self.pipelines, self.versions, self.experiments, self.recurring, self.calls = {}, {}, {}, {}, []

    def get_pipeline_id(self, name):
        return next((pid for pid, p in self.pipelines.items() if p == name), None)

    def upload_pipeline(self, path, pipeline_name=None):
        self.calls.append(("upload_pipeline", pipeline_name))
        pid = f"p{len(self.pipelines) + 1}"
        self.pipelines[pid] = pipeline_name
        self.versions[pid] = {pipeline_name: f"{pid}-v0"}  # KFP creates a first version named like the pipeline
        return Obj(pipeline_id=pid)

    def upload_pipeline_version(self, path, pipeline_version_name, pipeline_id=None):
        self.calls.append(("upload_pipeline_version", pipeline_version_name))
        assert open(path).read().startswith("# PIPELINE DEFINITION")
        version_id = f"{pipeline_id}-v{len(self.versions[pipeline_id])}"
        self.versions[pipeline_id][pipeline_version_name] = version_id
        return Obj(pipeline_version_id=version_id)

    def list_pipeline_versions(self, pipeline_id, page_token="", page_size=10):
        items = [Obj(display_name=n, pipeline_version_id=v) for n, v in self.versions[pipeline_id].items()]
        return Obj(pipeline_versions=items, next_page_token="")

    def get_experiment(self, experiment_name=None):
        if experiment_name not in self.experiments:
            raise ValueError(f"No experiment is found with name {experiment_name}")
        return Obj(experiment_id=self.experiments[experiment_name])

    def create_experiment(self, name):
        self.experiments[name] = f"e{len(self.experiments) + 1}"
        return Obj(experiment_id=self.experiments[name])

    def list_recurring_runs(self, experiment_id=None, page_size=10):
        return Obj(recurring_runs=[r for r in self.recurring.values() if r.experiment_id == experiment_id])

    def delete_recurring_run(self, run_id):
        self.calls.append(("delete_recurring_run", run_id))
        del self.recurring[run_id]

    def create_recurring_run(self, experiment_id, job_name, cron_expression, max_concurrency, no_catchup, params,
                             pipeline_id, version_id):
        self.calls.append(("create_recurring_run", job_name, max_concurrency, no_catchup))
        run_id = f"r{len(self.calls)}"
        self.recurring[run_id] = Obj(
            recurring_run_id=run_id, display_name=job_name, experiment_id=experiment_id, params=params,
            pipeline_version_reference=Obj(pipeline_version_id=version_id),
            trigger=Obj(cron_schedule=Obj(cron=cron_expression)))
        return self.recurring[run_id]


def test_deploy_pipeline_uploads_a_version_named_by_the_sha_once():
    client = FakeKfpClient()
    first = deliver.deploy_pipeline(client, "abc123")
    assert first["created_pipeline"] and first["version_id"]
    again = deliver.deploy_pipeline(client, "abc123")
    assert again["unchanged"] and again["version_id"] == first["version_id"]
    deliver.deploy_pipeline(client, "def456")
    assert [c for c in client.calls if c[0] == "upload_pipeline_version"] == [
        ("upload_pipeline_version", "abc123"), ("upload_pipeline_version", "def456")]


def test_schedule_creates_then_keeps_then_replaces_the_recurring_run():
    client = FakeKfpClient()
    deliver.deploy_pipeline(client, "abc123")
    created = deliver.schedule(client, "abc123", "0 0 6 * * *", "ct", "ct-daily", {"min_auc": 0.62})
    run = client.recurring[created["recurring_run_id"]]
    assert run.params == {"min_auc": 0.62} and ("create_recurring_run", "ct-daily", 1, True) in client.calls
    assert deliver.schedule(client, "abc123", "0 0 6 * * *", "ct", "ct-daily")["unchanged"]
    deliver.deploy_pipeline(client, "def456")
    replaced = deliver.schedule(client, "def456", "0 0 6 * * *", "ct", "ct-daily")
    assert replaced["replaced"] == created["recurring_run_id"] and len(client.recurring) == 1


def test_schedule_refuses_a_version_that_was_not_uploaded():
    client = FakeKfpClient()
    with pytest.raises(LookupError, match="deploy-pipeline first"):
        deliver.schedule(client, "abc123", "0 0 6 * * *", "ct", "ct-daily")


def test_dry_run_prints_the_plan_and_contacts_nothing(capsys):
    assert deliver.main(["deploy-pipeline", "--dry-run", "--version", "abc123", "--host", "http://kfp.invalid"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["dry_run"] and plan["version"] == "abc123" and plan["package"].endswith("ct_pipeline.yaml")
    assert deliver.main(["schedule", "--dry-run", "--version", "abc123", "--param", "max_iter=300"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["max_concurrency"] == 1 and plan["no_catchup"] and plan["params"] == {"max_iter": 300}


def test_missing_host_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.delenv("KFP_HOST", raising=False)
    assert deliver.main(["deploy-pipeline", "--version", "abc123"]) == 1
    assert "KFP_HOST" in capsys.readouterr().err
