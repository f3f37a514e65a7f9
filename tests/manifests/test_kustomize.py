"""Every kustomization under manifests/ builds with kubectl's kustomize."""

import glob
import os
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KUSTOMIZATIONS = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(ROOT, "manifests", "**",
                                                                           "kustomization.yaml"), recursive=True))


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: os.path.relpath(p, ROOT))
def test_kustomization_builds(folder):
    result = subprocess.run(["kubectl", "kustomize", folder], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    assert objects and all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kfp-ct" for o in objects)


def test_there_is_a_base():
    assert os.path.join(ROOT, "manifests", "base") in KUSTOMIZATIONS
