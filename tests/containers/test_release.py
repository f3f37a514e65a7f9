"""`make release` against a real OCI registry: Debian's docker-registry (distribution 2.8) on loopback.

Needs the images (`make images`) and docker-registry (`make registry-deps`); `make e2e-containers`
provides both. After the release every image reference of ours in the compiled pipeline and in
the rendered overlays resolves in the registry's HTTP API, and an image pulls back.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from pipelines.local.runner import REPO_ROOT

pytestmark = pytest.mark.e2e


def _engine():
    """podman where it is installed (its own client pushes to a plain-HTTP loopback registry with
    --tls-verify=false; a docker client talking to podman's Docker API would not), else Docker's daemon
    (which takes 127.0.0.0/8 registries as insecure by default)."""
    return "podman" if shutil.which("podman") else "docker"


@pytest.fixture
def registry(tmp_path):
    """docker-registry serving a fresh storage folder on a free loopback port."""
    from components.processes import free_port, stop_process

    if not shutil.which("docker-registry"):
        pytest.fail("docker-registry is not installed: make registry-deps (Debian's docker-registry package)")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                      f"    rootdirectory: {tmp_path}/data\n  delete:\n    enabled: true\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    with open(tmp_path / "registry.log", "wb") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"docker-registry did not answer: {(tmp_path / 'registry.log').read_text()[-2000:]}")
        time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    stop_process(process.pid)


def test_release_pushes_every_image_and_every_reference_resolves_and_pulls_back(registry, tmp_path):
    from components.images import RUNTIMES, image

    out = tmp_path / "release"
    result = subprocess.run([sys.executable, "-m", "pipelines.ct.release", "--registry", f"{registry}/team",
                             "--engine", _engine(), "--out", str(out)], cwd=REPO_ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": REPO_ROOT}, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    released = json.loads(result.stdout[result.stdout.index("{"):])
    assert released["pushed"] == [image(runtime, f"{registry}/team") for runtime in RUNTIMES]
    # Ours in the pipeline (executors, predictor) and in every overlay (monitor, watcher, feature server).
    assert {ref.split("/")[-1].split(":")[0] for ref in released["resolved"]} >= {"data", "feature", "train", "serve",
                                                                                 "monitor", "dev"}
    assert released["not_ours"] == ["docker.io/library/redis:7.4.2"]  # Redis: the overlays' own, not released
    catalog = json.load(urllib.request.urlopen(f"http://{registry}/v2/_catalog", timeout=10))
    assert sorted(catalog["repositories"]) == sorted(f"team/{runtime}" for runtime in RUNTIMES)
    # One pipeline per overlay, compiled for the overlay's KFP backend with its defaults, beside the overlay
    # rendered with the registry's images.
    import yaml

    from pipelines.ct import targets

    assert set(released["overlays"]) == {"kubeflow-platform", "prod", "standalone-kfp"}
    for overlay, what in released["overlays"].items():
        pipeline = (out / overlay / "ct_pipeline.yaml").read_text()
        assert f"{registry}/team/serve:" in pipeline and "localhost/kfp-ct/" not in pipeline
        assert targets.check(pipeline, what["target"]) == {}, overlay  # its backend parses it strictly
        inputs = next(d for d in yaml.safe_load_all(pipeline) if d and "root" in d)["root"]["inputDefinitions"]
        defaults = targets.deployment(overlay).defaults
        assert {k: inputs["parameters"][k]["defaultValue"] for k in defaults} == defaults
        assert (out / overlay / "kustomization.yaml").exists()
    assert released["overlays"]["kubeflow-platform"]["target"] == "kubeflow-1.10"
    assert released["overlays"]["standalone-kfp"]["target"] == targets.DEFAULT_TARGET
    # The registry serves what was pushed: it pulls back.
    engine = _engine()
    ref = image("train", f"{registry}/team")
    subprocess.run([engine, "rmi", ref], capture_output=True, check=False)
    pulled = subprocess.run([engine, "pull", *(["--tls-verify=false"] if engine == "podman" else []), ref],
                            capture_output=True, text=True, check=False)
    assert pulled.returncode == 0, pulled.stderr[-2000:]
