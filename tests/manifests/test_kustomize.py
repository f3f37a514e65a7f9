"""Every kustomization builds, shares the image tags of components/images.py and keeps secure defaults."""

import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml
from pod_security import restricted_violations

from components import images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _is_component(path):
    return yaml.safe_load(open(os.path.join(path, "kustomization.yaml")))["kind"] == "Component"


ALL_KUSTOMIZATIONS = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(ROOT, "manifests", "**",
                                                                               "kustomization.yaml"), recursive=True))
#: What `kubectl apply -k` takes (kustomize Components are only parts of those).
KUSTOMIZATIONS = [k for k in ALL_KUSTOMIZATIONS if not _is_component(k)]
#: The deployable targets: an overlay with the system's workloads.
TARGETS = [k for k in KUSTOMIZATIONS if os.path.dirname(k) == os.path.join(ROOT, "manifests", "overlays")]
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
    # A Namespace's part-of label is KFP's admission label (overlays/standalone-kfp/namespace.yaml).
    assert objects and all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kfp-ct"
                           for o in objects if o["kind"] != "Namespace")
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
    for secret in (o for o in objects if o["kind"] == "Secret"):
        # No data keys at all: apply must never empty a Secret that was filled after it.
        assert "stringData" not in secret and "data" not in secret, "the S3 Secret in git must stay a template"
    kinds = {o["kind"] for o in objects}
    assert {"Role", "RoleBinding", "ServiceAccount"} <= kinds


@needs_kubectl
@pytest.mark.parametrize("folder", TARGETS, ids=lambda p: os.path.relpath(p, ROOT))
def test_each_target_has_default_deny_the_store_flows_and_no_foreign_namespace(folder):
    objects = build(folder)
    names = {o["metadata"]["name"] for o in objects if o["kind"] == "NetworkPolicy"}
    assert {"default-deny", "allow-dns", "allow-s3-egress"} <= names
    namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
    assert len(namespaces) == 1 and None not in namespaces, namespaces
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "ct-s3-config")
    assert config["data"]["S3_ENDPOINT"].split("://")[0] in ("http", "https")


@needs_kubectl
@pytest.mark.parametrize("folder", TARGETS, ids=lambda p: os.path.relpath(p, ROOT))
def test_our_pods_pass_the_restricted_pod_security_standard(folder):
    workloads = [o for o in build(folder) if o["kind"] in ("Deployment", "StatefulSet", "CronJob")]
    assert workloads
    for workload in workloads:
        template = workload["spec"].get("jobTemplate", workload)["spec"]["template"]["spec"]
        assert restricted_violations(template) == [], workload["metadata"]["name"]


def test_the_restricted_check_catches_what_restricted_forbids():
    container = {"name": "c", "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                                                  "capabilities": {"drop": ["ALL"]},
                                                  "seccompProfile": {"type": "RuntimeDefault"}}}
    assert restricted_violations({"containers": [container]}) == []
    assert restricted_violations({"containers": [{"name": "bare"}]})  # what KFP 2.5 and KServe inject
    assert restricted_violations({"containers": [container], "volumes": [{"name": "h", "hostPath": {}}]})
    assert restricted_violations({"containers": [container], "hostNetwork": True})


@needs_kubectl
@pytest.mark.parametrize("folder", TARGETS, ids=lambda p: os.path.relpath(p, ROOT))
def test_tokens_are_mounted_only_where_a_pod_calls_the_api_server(folder):
    objects = build(folder)
    accounts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServiceAccount"}
    for name, account in accounts.items():
        # The pipeline's pods call the API server (driver, launcher, Argo, deploy) with the automounted token.
        assert account.get("automountServiceAccountToken") is (name == "ct-pipeline-runner"), name
    api_tokens = {}
    for workload in (o for o in objects if o["kind"] == "Deployment"):
        pod = workload["spec"]["template"]["spec"]
        assert pod.get("automountServiceAccountToken") is False
        # A token for the API server: a projected serviceAccountToken without another audience.
        for volume in pod.get("volumes") or []:
            for source in (volume.get("projected") or {}).get("sources") or []:
                token = source.get("serviceAccountToken")
                if token is not None and not token.get("audience"):
                    assert token["expirationSeconds"] <= 3600
                    api_tokens[workload["metadata"]["name"]] = [
                        c["name"] for c in pod["containers"]
                        if any(m["name"] == volume["name"] for m in c.get("volumeMounts") or [])]
    # Of our long-running pods only the releaser calls the API server (experiment decisions), in its one container.
    assert api_tokens == {"ct-releaser": ["releaser"]}
    roles = {o["metadata"]["name"]: o["rules"] for o in objects if o["kind"] == "Role"}
    assert roles["ct-releaser"] == [{"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"],
                                     "verbs": ["get", "patch"]}]
    bindings = {o["metadata"]["name"]: o for o in objects if o["kind"] == "RoleBinding"}
    assert bindings["ct-releaser"]["subjects"][0]["name"] == "ct-releaser"


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
    ours = {image for image in used if image.rsplit(":", 1)[0].rsplit("/", 1)[0].endswith("kfp-ct")}
    assert ours == {images.image("monitor"), images.image("dev"), images.image("feature"), images.image("serve")}
    assert used - ours == {"docker.io/library/redis:7.4.2"}  # the online store


@needs_kubectl
def test_a_broken_manifest_fails_the_build(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    result = subprocess.run(["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "missing.yaml" in result.stderr


def test_there_is_a_base_and_an_overlay_per_supported_target():
    assert {os.path.relpath(k, os.path.join(ROOT, "manifests")) for k in KUSTOMIZATIONS} >= {
        "base", os.path.join("overlays", "kubeflow-platform"), os.path.join("overlays", "standalone-kfp"),
        os.path.join("overlays", "prod")}


CHECKOV = os.path.join(ROOT, ".venvs", "checkov", "bin", "checkov")


@needs_kubectl
@pytest.mark.skipif(not os.path.exists(CHECKOV), reason="no checkov environment (make manifests-check builds it)")
@pytest.mark.parametrize("folder", [k for k in KUSTOMIZATIONS if "overlays" in k],
                         ids=lambda p: os.path.relpath(p, ROOT))
def test_checkov_finds_no_failed_check(folder, tmp_path):
    built = tmp_path / "built.yaml"
    built.write_text(subprocess.run(["kubectl", "kustomize", folder], capture_output=True, text=True,
                                    check=True).stdout)
    result = subprocess.run([CHECKOV, "--config-file", os.path.join(ROOT, "manifests", ".checkov.yaml"),
                             "-f", str(built)], capture_output=True, text=True, check=False)
    summary = [line for line in result.stdout.splitlines() if line.startswith("Passed checks")]
    print(os.path.relpath(folder, ROOT), summary)
    assert summary and "Failed checks: 0" in summary[0], result.stdout[-3000:]


@needs_kubectl
@pytest.mark.parametrize("folder", TARGETS, ids=lambda p: os.path.relpath(p, ROOT))
def test_the_watcher_reaches_the_kfp_api_of_its_target(folder):
    watcher = next(o for o in build(folder) if o["kind"] == "Deployment" and o["metadata"]["name"] == "ct-watcher")
    env = {e["name"]: e for e in watcher["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KFP_HOST"]["value"].startswith("http://ml-pipeline.kubeflow:8888")
    multi_user = os.path.basename(folder) != "standalone-kfp"
    if multi_user:  # runs go to the profile namespace the watcher lives in
        assert env["KFP_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    else:
        assert env["KFP_NAMESPACE"] == {"name": "KFP_NAMESPACE", "value": ""}
    volumes = {v["name"]: v for v in watcher["spec"]["template"]["spec"]["volumes"]}
    assert volumes["kfp-token"]["projected"]["sources"][0]["serviceAccountToken"]["audience"] == \
        "pipelines.kubeflow.org"


@needs_kubectl
@pytest.mark.parametrize("folder", TARGETS, ids=lambda p: os.path.relpath(p, ROOT))
def test_the_watcher_s_run_parameters_are_inputs_of_the_compiled_pipeline(folder):
    """The watcher's run parameters (the ConfigMap ct-pipeline-defaults it mounts at --params-dir, and any
    KEY=VALUE) are parameters of pipelines/ct_pipeline.yaml, and the ones a cluster run cannot do without
    are there and name this overlay's namespace (the feature repository mounted from ct-feature-store:
    without it join_features writes under /app and fails)."""
    objects = build(folder)
    watcher = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "ct-watcher")
    pod = watcher["spec"]["template"]["spec"]
    command = pod["containers"][0]["command"]
    mounted = next(m["name"] for m in pod["containers"][0]["volumeMounts"]
                   if m["mountPath"] == command[command.index("--params-dir") + 1])
    config_map = next(v["configMap"]["name"] for v in pod["volumes"] if v["name"] == mounted)
    defaults = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == config_map)
    params = {**defaults["data"], **dict(arg.split("=", 1) for arg in command[command.index("watch"):]
                                         if "=" in arg and not arg.startswith("-"))}
    with open(os.path.join(ROOT, "pipelines", "ct_pipeline.yaml"), encoding="utf-8") as handle:
        compiled = next(d for d in yaml.safe_load_all(handle) if d and "root" in d)
    inputs = compiled["root"]["inputDefinitions"]["parameters"]
    assert params and set(params) <= set(inputs), set(params) - set(inputs)
    from pipelines.ct.pipeline import FEATURE_REPO_MOUNT
    from pipelines.ct.spec import parse_params

    parse_params([f"{k}={v}" for k, v in params.items()])  # each value fits its input's type
    namespace = watcher["metadata"]["namespace"]
    # Where the feature steps mount the ConfigMap ct-feature-store (pipelines/ct/pipeline.py, _harden).
    assert params["feature_repo"] == FEATURE_REPO_MOUNT and params["serving_target"] == "kserve"
    assert params["namespace"] == namespace
    assert params["payload_logger_url"] == f"http://ct-monitor.{namespace}.svc.cluster.local/"
    assert params["feature_server_url"] == f"http://ct-feature-server.{namespace}.svc.cluster.local:6566"
    assert "set-by-overlay" not in params.values()
    # The watcher lists spans where runs read them; the monitor reads the registry runs deploy to.
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["SOURCE_URI"]["valueFrom"]["configMapKeyRef"] == {"name": config_map, "key": "source_uri"}
    monitor = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "ct-monitor")
    monitor_env = {e["name"]: e for e in monitor["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert monitor_env["MONITOR_REGISTRY"]["valueFrom"]["configMapKeyRef"] == {"name": config_map,
                                                                               "key": "registry_uri"}


@needs_kubectl
@pytest.mark.parametrize("folder", TARGETS, ids=lambda p: os.path.relpath(p, ROOT))
def test_a_pipeline_compiled_for_an_overlay_needs_no_parameter_but_its_window(folder, tmp_path):
    """make compile OVERLAY=...: the overlay's defaults are the inputs' defaults, for the backend it names."""
    from pipelines.ct import targets
    from pipelines.ct.compile import main

    chosen = targets.deployment(folder)
    output = tmp_path / "ct.yaml"
    assert main(["--overlay", folder, "--output", str(output)]) == 0
    text = output.read_text()
    inputs = next(d for d in yaml.safe_load_all(text) if d and "root" in d)["root"]["inputDefinitions"]["parameters"]
    assert {key: inputs[key]["defaultValue"] for key in chosen.defaults} == chosen.defaults
    assert targets.check(text, chosen.target.name) == {}


@needs_kubectl
def test_an_overlay_is_refused_with_a_backend_it_does_not_name_or_a_default_the_pipeline_lacks(tmp_path):
    from pipelines.ct import targets
    from pipelines.ct.compile import main

    with pytest.raises(ValueError, match="runs on kubeflow-1.10 .*not 'kfp-2.17'"):
        targets.deployment("kubeflow-platform", "kfp-2.17")
    with pytest.raises(ValueError, match="leaves feature_server_url, namespace, payload_logger_url, annotation "
                                         "kfp-ct/kfp-targets of ct-pipeline-defaults unset"):
        targets.deployment(os.path.join(ROOT, "manifests", "base"))
    assert targets.overlays_for("kubeflow-1.10") == ["kubeflow-platform", "prod"]
    assert targets.overlays_for("kfp-2.15") == ["standalone-kfp"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(os.path.join(ROOT, "manifests", "overlays", "standalone-kfp"), mine)],
        "patches": [{"patch": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ct-pipeline-defaults\n"
                              "data:\n  serving_prot: '8080'\n"}]}))
    with pytest.raises(SystemExit):
        main(["--overlay", str(mine), "--output", str(tmp_path / "x.yaml")])
    assert not (tmp_path / "x.yaml").exists()


@needs_kubectl
def test_standalone_pipeline_pods_find_their_configuration_in_kfp_s_namespace():
    """Standalone KFP runs the pipeline's pods in `kubeflow`: every ConfigMap and Secret they read is there,
    the feature store's repository equals the kfp-ct one but for namespace-qualified service names."""
    from pipelines.ct import pipeline

    pipeline_ns = build(os.path.join(ROOT, "manifests", "overlays", "standalone-kfp", "pipeline-namespace"))
    system_ns = build(os.path.join(ROOT, "manifests", "overlays", "standalone-kfp"))
    found = {(o["kind"], o["metadata"]["name"]): o for o in pipeline_ns}
    assert all(o["metadata"]["namespace"] == "kubeflow" for o in pipeline_ns)
    for kind, name in (("ConfigMap", pipeline.S3_CONFIG), ("Secret", pipeline.S3_SECRET),
                       ("ConfigMap", pipeline.FEATURE_STORE_CONFIG), ("Secret", pipeline.FEATURE_STORE_SECRET)):
        assert (kind, name) in found, (kind, name)
    assert not found[("Secret", pipeline.S3_SECRET)].get("data")  # a template: values by kubectl patch
    ours = found[("ConfigMap", pipeline.FEATURE_STORE_CONFIG)]["data"]
    theirs = next(o for o in system_ns if o["kind"] == "ConfigMap" and o["metadata"]["name"] ==
                  pipeline.FEATURE_STORE_CONFIG)["data"]
    qualified = {"ct-redis:6379": "ct-redis.kfp-ct.svc.cluster.local:6379",
                 "http://ct-feature-server:6566": "http://ct-feature-server.kfp-ct.svc.cluster.local:6566"}
    expected = {}
    for key, value in theirs.items():
        for short, full in qualified.items():
            value = value.replace(short, full)
        expected[key] = value
    assert ours == expected
    s3 = next(o for o in system_ns if o["kind"] == "ConfigMap" and o["metadata"]["name"] == pipeline.S3_CONFIG)
    assert found[("ConfigMap", pipeline.S3_CONFIG)]["data"] == s3["data"]


_API_GROUPS = {"Role": "role.rbac.authorization.k8s.io", "RoleBinding": "rolebinding.rbac.authorization.k8s.io",
               "Deployment": "deployment.apps", "NetworkPolicy": "networkpolicy.networking.k8s.io"}


def _created(objects):
    """The lines `kubectl apply` prints for these objects (a generated ConfigMap's hash as <hash>)."""
    return [f"{_API_GROUPS.get(o['kind'], o['kind'].lower())}/"
            + re.sub(r"^(ct-dataset-spec)-[a-z0-9]{10}$", r"\1-<hash>", o["metadata"]["name"]) + " created"
            for o in objects]


@needs_kubectl
def test_readme_s_deployment_steps_list_what_the_overlays_create():
    """README "Deploying to a cluster": the objects `kubectl apply -k` prints, and the NetworkPolicy counts."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    platform = build(os.path.join(ROOT, "manifests", "overlays", "kubeflow-platform"))
    created = _created(platform)
    policies = [line for line in created if line.startswith("networkpolicy")]
    listed = created[:created.index(policies[0]) + 1] + [
        f"... ({len(policies)} NetworkPolicies in all, default-deny last)"]
    assert policies[-1] == "networkpolicy.networking.k8s.io/default-deny created"
    assert "\n".join(f"   {line}" for line in listed) in readme
    standalone = build(os.path.join(ROOT, "manifests", "overlays", "standalone-kfp"))
    count = sum(o["kind"] == "NetworkPolicy" for o in standalone)
    assert f"two pipeline NetworkPolicies ({count} NetworkPolicies)" in readme and count == len(policies) - 2
    pipeline_ns = _created(build(os.path.join(ROOT, "manifests", "overlays", "standalone-kfp", "pipeline-namespace")))
    assert "\n".join(f"   {line}" for line in pipeline_ns) in readme
