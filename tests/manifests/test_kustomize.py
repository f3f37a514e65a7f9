"""Every kustomization builds, shares the image tags of components/images.py and keeps secure defaults."""

import glob
import os
import shutil
import subprocess

import pytest
import yaml

from components import images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KUSTOMIZATIONS = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(ROOT, "manifests", "**",
                                                                           "kustomization.yaml"), recursive=True))
KUBERNETES_VERSION = "1.30"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def build(folder):
    result = subprocess.run(["kubectl", "kustomize", folder], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [o for o in yaml.safe_load_all(result.stdout) if o]


@needs_kubectl
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: os.path.relpath(p, ROOT))
def test_kustomization_builds_with_secure_workloads(folder):
    objects = build(folder)
    assert objects and all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kfp-ct" for o in objects)
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    for workload in (o for o in objects if o["kind"] == "Deployment"):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == \
            "RuntimeDefault"
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
            assert security["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["limits"] and container["resources"]["requests"]
            assert container["readinessProbe"] and container["livenessProbe"]
            assert ":" in container["image"].rsplit("/", 1)[-1], "image not pinned by tag"
    secret = next(o for o in objects if o["kind"] == "Secret")
    assert not any(secret.get("stringData", {}).values()), "the S3 Secret in git must stay a template"
    kinds = {o["kind"] for o in objects}
    assert {"NetworkPolicy", "Role", "RoleBinding", "ServiceAccount"} <= kinds


@needs_kubectl
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_object_matches_the_kubernetes_schemas(folder):
    import kubernetes_validate

    for obj in build(folder):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_schema_validation_catches_a_misspelled_field():
    import kubernetes_validate

    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"portz": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)


@needs_kubectl
def test_base_uses_the_image_tags_the_pipeline_uses():
    objects = build(os.path.join(ROOT, "manifests", "base"))
    used = {c["image"] for o in objects if o["kind"] == "Deployment"
            for c in o["spec"]["template"]["spec"]["containers"]}
    assert used == {images.image("monitor")}


@needs_kubectl
def test_a_broken_manifest_fails_the_build(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    result = subprocess.run(["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "missing.yaml" in result.stderr


def test_there_is_a_base_and_overlays():
    assert {os.path.relpath(k, os.path.join(ROOT, "manifests")) for k in KUSTOMIZATIONS} >= {
        "base", os.path.join("overlays", "dev"), os.path.join("overlays", "prod")}


CHECKOV = os.path.join(ROOT, ".venvs", "checkov", "bin", "checkov")


@needs_kubectl
@pytest.mark.skipif(not os.path.exists(CHECKOV), reason="no checkov environment (make manifests-check builds it)")
@pytest.mark.parametrize("folder", [k for k in KUSTOMIZATIONS if "overlays" in k], ids=os.path.basename)
def test_checkov_finds_no_failed_check(folder, tmp_path):
    built = tmp_path / "built.yaml"
    built.write_text(subprocess.run(["kubectl", "kustomize", folder], capture_output=True, text=True,
                                    check=True).stdout)
    result = subprocess.run([CHECKOV, "--config-file", os.path.join(ROOT, "manifests", ".checkov.yaml"),
                             "-f", str(built)], capture_output=True, text=True, check=False)
    summary = [line for line in result.stdout.splitlines() if line.startswith("Passed checks")]
    print(os.path.relpath(folder, ROOT), summary)
    assert summary and "Failed checks: 0" in summary[0], result.stdout[-3000:]
