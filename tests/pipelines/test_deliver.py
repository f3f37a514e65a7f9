"""Pipeline delivery through the real ``kfp.Client`` against a STAND-IN of the KFP v2beta1 REST API.

No KFP API server runs here; ``kfp_api_stand_in.py`` answers over real HTTP as the server does,
so the SDK's own request building and serialization run (what an in-process fake would skip).
"""

import json

import pytest
from kfp_api_stand_in import KfpApiStandIn

from pipelines.ct import deliver


@pytest.fixture
def api():
    with KfpApiStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def client(api):
    return deliver.connect(api.host)


def test_deploy_pipeline_uploads_a_version_named_by_the_sha_once(api, client):
    first = deliver.deploy_pipeline(client, "abc123")
    assert first["created_pipeline"] and first["version_id"]
    again = deliver.deploy_pipeline(client, "abc123")
    assert again["unchanged"] and again["version_id"] == first["version_id"]
    deliver.deploy_pipeline(client, "def456")
    names = sorted(v["display_name"] for v in api.versions.values())
    assert names == sorted(["continuous-training", "abc123", "def456"])  # the first version is named like the pipeline
    posted = [path for method, path in api.requests if method == "POST"]
    assert posted.count("/apis/v2beta1/pipelines/upload_version") == 2


def test_versions_are_found_across_pages(api, client):
    deliver.deploy_pipeline(client, "v0")
    pipeline_id = client.get_pipeline_id("continuous-training")
    spec = next(iter(api.versions.values()))["spec"]
    for index in range(1, 130):
        api._add_version(pipeline_id, f"v{index}", spec)
    assert deliver.deploy_pipeline(client, "v125")["unchanged"]  # on the second page of 100


def test_schedule_creates_then_keeps_then_replaces_the_recurring_run(api, client):
    deliver.deploy_pipeline(client, "abc123")
    created = deliver.schedule(client, "abc123", "0 0 6 * * *", "ct", "ct-daily", {"eval_fraction": 0.3},
                               service_account="ct-pipeline-runner")
    run = api.recurring_runs[created["recurring_run_id"]]
    assert run["runtime_config"]["parameters"] == {"eval_fraction": 0.3, "trigger": "schedule", "git_sha": "abc123"}
    assert run["max_concurrency"] in ("1", 1) and run["no_catchup"] and run["mode"] == "ENABLE"
    assert run["service_account"] == "ct-pipeline-runner" and run["trigger"]["cron_schedule"]["cron"] == "0 0 6 * * *"
    assert deliver.schedule(client, "abc123", "0 0 6 * * *", "ct", "ct-daily", {"eval_fraction": 0.3},
                            service_account="ct-pipeline-runner")["unchanged"]
    deliver.deploy_pipeline(client, "def456")
    replaced = deliver.schedule(client, "def456", "0 0 6 * * *", "ct", "ct-daily")
    assert replaced["replaced"] == created["recurring_run_id"] and len(api.recurring_runs) == 1


def test_schedule_refuses_a_version_that_was_not_uploaded(client):
    with pytest.raises(LookupError, match="deploy-pipeline first"):
        deliver.schedule(client, "abc123", "0 0 6 * * *", "ct", "ct-daily")


def test_parameters_the_pipeline_does_not_declare_are_refused_by_the_api(api, client):
    from kfp_server_api import ApiException

    deliver.deploy_pipeline(client, "abc123")
    with pytest.raises(ApiException, match="no_such_parameter"):
        deliver.schedule(client, "abc123", "0 0 6 * * *", "ct", "ct-daily", {"no_such_parameter": 1})
    with pytest.raises(ApiException, match="requires type NUMBER_DOUBLE"):
        deliver.schedule(client, "abc123", "0 0 6 * * *", "ct", "ct-daily", {"eval_fraction": "high"})


def test_multi_user_platform_gets_the_profile_namespace_on_every_namespaced_call(capsys):
    with KfpApiStandIn(multi_user=True) as api:
        client = deliver.connect(api.host)
        deliver.deploy_pipeline(client, "abc123")
        with pytest.raises(Exception, match="requires a namespace"):
            deliver.schedule(client, "abc123", "0 0 6 * * *", "ct", "ct-daily")
        deliver.schedule(client, "abc123", "0 0 6 * * *", "ct", "ct-daily", namespace="kubeflow-user-example-com")
        [experiment] = api.experiments.values()
        assert experiment["namespace"] == "kubeflow-user-example-com"
        code = deliver.main(["schedule", "--host", api.host, "--version", "abc123", "--namespace", ""])
        assert code == 1 and "answered 400" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_contacts_nothing(capsys):
    assert deliver.main(["deploy-pipeline", "--dry-run", "--version", "abc123", "--host", "http://kfp.invalid"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["dry_run"] and plan["version"] == "abc123" and plan["package"].endswith("ct_pipeline.yaml")
    assert deliver.main(["schedule", "--dry-run", "--version", "abc123", "--param", "max_iter=300"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["max_concurrency"] == 1 and plan["no_catchup"]
    assert plan["params"] == {"max_iter": 300, "trigger": "schedule", "git_sha": "abc123"}


def test_missing_host_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.delenv("KFP_HOST", raising=False)
    assert deliver.main(["deploy-pipeline", "--version", "abc123"]) == 1
    assert "KFP_HOST" in capsys.readouterr().err


def test_a_package_the_server_s_backend_would_not_parse_is_refused_before_upload(tmp_path):
    """The committed YAML (KFP 2.17's) on a KFP 2.5 server would lose its pod labels in silence: refused,
    naming the backend and the command that compiles for it; the YAML compiled for 2.5 is uploaded."""
    from pipelines.ct.compile import compile_to, pipelines

    with KfpApiStandIn(multi_user=True, tag_name="2.5.0") as api:
        client = deliver.connect(api.host)
        with pytest.raises(ValueError, match=r"pipelines/ct_pipeline.yaml does not fit KFP 2.5.0 \(kubeflow-1.10\): "
                                             r"exec-.*optional.*make compile OVERLAY=<your overlay> "
                                             r"KFP_TARGET=kubeflow-1.10"):
            deliver.deploy_pipeline(client, "abc123")
        assert not api.versions  # nothing uploaded
        fitted = str(tmp_path / "ct.yaml")
        compile_to(pipelines()[0][0], fitted, "", "kubeflow-1.10")
        uploaded = deliver.deploy_pipeline(client, "abc123", pipeline_yaml=fitted)
        assert uploaded["backend"] == {"backend": "2.5.0", "target": "kubeflow-1.10"} and uploaded["version_id"]
    with KfpApiStandIn(tag_name="2.4.1") as api:
        with pytest.raises(ValueError, match="the KFP backend at the host is 2.4.1, not a supported one"):
            deliver.deploy_pipeline(deliver.connect(api.host), "abc123")
    with KfpApiStandIn(tag_name="unknown") as api:  # a build without TAG_NAME: nothing to check against
        assert deliver.deploy_pipeline(deliver.connect(api.host), "abc123")["backend"]["target"] is None
