"""The compiled pipeline under the KFP v2 backend's contract, with a STAND-IN for the backend.

The Go driver and launcher cannot run here; ``--contract kfp-backend`` runs every task through
a stand-in that follows their source (components/lineage/kfp_backend.py names the files):
artifact metadata reaches the next task as MLMD stores it (lists and dicts wrapped, booleans
as 0/1, numbers as doubles, a null fails the task) and only the backend's records are written
to ML Metadata. A component that wrote a null, or read wrapped metadata without unwrapping it,
fails these runs.
"""

import json
import os
import shutil
import sqlite3
import subprocess

import pytest
import yaml

from components import registry
from components.model_server import control
from pipelines.local.runner import REPO_ROOT, run_pipeline_file, runtime_python

from .conftest import lineage, run_window

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def backend_var(tmp_path_factory, sliced_source):
    """Two windows run under the backend contract: v0001, then v0002 judged against it."""
    var, port = tmp_path_factory.mktemp("backend-var"), control.free_port()
    first = run_window(var, "2013-01:2013-04", sliced_source, port, contract="kfp-backend")
    second = run_window(var, "2013-02:2013-05", sliced_source, port, contract="kfp-backend", metric_max_change="1.0")
    yield {"var": var, "first": first, "second": second}
    control.stop(os.path.join(str(var), "serving", "flights-delay"))


def test_stand_in_backend_run_has_the_outcome_of_the_kfp_local_run(backend_var, deployed):
    code, facts = backend_var["first"]
    local = deployed["facts"]
    assert code == 0 and deployed["code"] == 0
    assert [s["step"] for s in facts["steps"]] == [s["step"] for s in local["steps"]]
    assert facts["data"]["data_hash"] == local["data"]["data_hash"]
    assert facts["data"]["spans"] == local["data"]["spans"] == ["2013-01", "2013-02", "2013-03", "2013-04"]
    assert facts["candidate"] == local["candidate"]
    assert bool(facts["blessing"]["blessed"]) == bool(local["blessing"]["blessed"]) is True
    assert facts["deployment"]["pointer"]["version"] == local["deployment"]["pointer"]["version"] == "v0001"
    # What the next task got is what MLMD stored: the stand-in really converted it.
    extract = next(s for s in facts["steps"] if s["step"] == "extract")
    with open(os.path.join(os.path.dirname(extract["log"]), "executor_output.json"), encoding="utf-8") as handle:
        handed_on = json.load(handle)["artifacts"]["dataset"]["artifacts"][0]
    assert handed_on["name"].isdigit() and handed_on["metadata"]["spans"] == {"list": facts["data"]["spans"]}


def test_stand_in_backend_run_resolves_the_baseline_from_backend_records(backend_var):
    code, facts = backend_var["second"]
    assert code == 0
    assert facts["baseline_version"] == "v0001"
    assert facts["deployment"]["pointer"]["version"] == "v0002"
    current = registry.current(os.path.join(str(backend_var["var"]), "registry"), "flights-delay")
    assert current["version"] == "v0002"


def test_stand_in_backend_store_holds_only_backend_records(backend_var):
    store = os.path.join(str(backend_var["var"]), "runs", "metadata.sqlite")
    with sqlite3.connect(store) as db:
        names = {row[0] for row in db.execute("SELECT name FROM ExecutionProperty")}
        types = {row[0] for row in db.execute("SELECT name FROM Type")}
    assert "run_id" not in names and "started_at" not in names  # the local recorder did not run
    assert {"task_name", "parent_dag_id", "pod_name", "image", "inputs", "outputs"} <= names
    assert {"system.DAGExecution", "system.ContainerExecution", "system.PipelineRun"} <= types


def test_make_lineage_on_a_backend_shaped_store(backend_var, tmp_path):
    var = backend_var["var"]
    serving = lineage(var, "serving")
    assert serving["version"] == "v0002" and serving["spans"] == ["2013-02", "2013-03", "2013-04", "2013-05"]
    assert serving["trigger"] == "on_demand" and serving["git_sha"]
    assert serving["parameters"]["test_span"] == "2013-05"
    assert serving["baseline"]["version"] == "v0001" and serving["test_metrics"]["auc"] > 0.5
    assert set(serving["images"]) >= {"train", "evaluate", "deploy"}
    runs = lineage(var, "runs")
    assert [r["deployed"] for r in runs] == ["v0001", "v0002"] and {r["status"] for r in runs} == {"COMPLETE"}
    steps = lineage(var, "steps", runs[-1]["run_id"])
    assert [s["step"] for s in steps][0] == "fingerprint" and all(s["state"] == "COMPLETE" for s in steps)
    difference = lineage(var, "diff", "v0001", "v0002")
    assert difference["spans"][1] == serving["spans"] and difference["runs"][1] == runs[-1]["run_id"]
    out = tmp_path / "graph.html"
    subprocess.run([runtime_python("data"), "-m", "components.lineage", "--store",
                    os.path.join(str(var), "runs", "metadata.sqlite"), "graph", runs[-1]["run_id"], "-o", str(out)],
                   cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT}, check=True, capture_output=True)
    assert "train (COMPLETE)" in out.read_text()


NULL_WRITER = """
import json, os, sys
executor_input = json.loads(sys.argv[2])
outputs = executor_input["outputs"]
artifact = dict(outputs["artifacts"]["report"]["artifacts"][0], metadata={"baseline_auc": None})
artifact.pop("type", None)
os.makedirs(os.path.dirname(artifact["uri"]), exist_ok=True)
open(artifact["uri"], "w").write("{}")
json.dump({"artifacts": {"report": {"artifacts": [artifact]}}}, open(outputs["outputFile"], "w"))
"""


def test_a_component_writing_a_null_fails_under_the_contract_and_not_under_kfp_local(tmp_path):
    """The same one-task pipeline: kfp.local accepts the null, the stand-in backend fails the task."""
    from kfp import compiler, dsl

    from components.images import image

    @dsl.container_component
    def writes_null(report: dsl.Output[dsl.Artifact]):
        return dsl.ContainerSpec(image=image("data"), command=["python", "-c", NULL_WRITER],
                                 args=["--executor-input", "{{$}}"])

    @dsl.pipeline(name="null-writer")
    def null_pipeline():
        writes_null()

    package = str(tmp_path / "null.yaml")
    compiler.Compiler().compile(null_pipeline, package)
    assert yaml.safe_load(open(package))["pipelineInfo"]["name"] == "null-writer"
    assert run_pipeline_file(package, {}, str(tmp_path / "local"))
    store = str(tmp_path / "mlmd.sqlite")
    assert not run_pipeline_file(package, {}, str(tmp_path / "backend"), backend_contract_store=store)
    log = next(os.path.join(root, "task.log") for root, _, files in os.walk(tmp_path / "backend")
               if "task.log" in files)
    assert "unknown/unsupported value type *structpb.Value_NullValue" in open(log).read()


# ----- the same run under a target backend's rules (--kfp-target; pipelines/ct/pods.py) -----

#: Target -> the kustomization holding the namespace where its pipeline's pods run.
PIPELINE_NAMESPACE = {"kubeflow-1.10": "kubeflow-platform", "kfp-2.15": "standalone-kfp/pipeline-namespace",
                      "kfp-2.16": "standalone-kfp/pipeline-namespace", "kfp-2.17": "standalone-kfp/pipeline-namespace"}


def _cluster_objects(tmp_path, fill, target="kubeflow-1.10"):
    """The ConfigMaps and Secrets `kubectl apply -k` creates where the target's pipeline pods run, the Secrets
    filled as README says when ``fill``."""
    rendered = subprocess.run(["kubectl", "kustomize", os.path.join(REPO_ROOT, "manifests", "overlays",
                                                                    PIPELINE_NAMESPACE[target])],
                              capture_output=True, text=True, check=True).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o and o["kind"] in ("ConfigMap", "Secret")]
    if fill:
        filled = {"ct-s3-credentials": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
                  "ct-feature-store-credentials": {"REDIS_PASSWORD": "p"}}
        for obj in objects:
            if obj["metadata"]["name"] in filled:
                obj["stringData"] = filled[obj["metadata"]["name"]]
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    return str(path)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_under_kfp_2_5_rules_a_pod_whose_secret_is_not_filled_never_starts(tmp_path, sliced_source):
    """KFP 2.5 makes every env reference required: with the overlay applied and its Secrets left as
    templates, the first task that reads the S3 credentials fails before it runs, naming the key."""
    var, port = tmp_path / "var", control.free_port()
    code, facts = run_window(var, "2013-01:2013-04", sliced_source, port, contract="kfp-backend",
                             run_args=["--kfp-target", "kubeflow-1.10",
                                       "--cluster-objects", _cluster_objects(tmp_path, fill=False)])
    assert code != 0 and not facts.get("deployment")
    [failed] = [s for s in facts["steps"] if not s["ok"]]
    with open(failed["log"], encoding="utf-8") as handle:
        log = handle.read()
    assert log.startswith("[kfp backend] the task's pod does not start: CreateContainerConfigError: couldn't find "
                          "key AWS_ACCESS_KEY_ID in Secret kubeflow-user-example-com/ct-s3-credentials"), log
    assert not os.path.exists(os.path.join(str(var), "registry", "flights-delay", "current.json"))


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("target", sorted(PIPELINE_NAMESPACE))
def test_under_each_target_s_rules_with_the_secrets_filled_the_run_has_the_outcome_of_the_default_target(
        tmp_path, sliced_source, backend_var, target):
    var, port = tmp_path / "var", control.free_port()
    try:
        code, facts = run_window(var, "2013-01:2013-04", sliced_source, port, contract="kfp-backend",
                                 run_args=["--kfp-target", target,
                                           "--cluster-objects", _cluster_objects(tmp_path, True, target)])
    finally:
        control.stop(os.path.join(str(var), "serving", "flights-delay"))
    _, default = backend_var["first"]
    assert code == 0
    assert facts["data"]["data_hash"] == default["data"]["data_hash"]
    assert facts["candidate"] == default["candidate"] and facts["deployment"]["pointer"]["version"] == "v0001"
    with open(os.path.join(facts["run_dir"], "run.json"), encoding="utf-8") as handle:
        run = json.load(handle)
    assert run["kfp_target"] == target and run["pipeline_yaml"].endswith(f"ct_pipeline.{target}.yaml")
