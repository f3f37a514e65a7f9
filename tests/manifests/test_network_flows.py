"""Every flow the system needs is open and every other one tried here is closed, on each rendered overlay.

The rendered NetworkPolicies of an overlay are evaluated (``netpol.py``) on a model of the
cluster it targets: the platform's pods with the labels their upstream manifests give them,
our pods with the labels the rendered Deployments, the deploy step (the predictor) and the
pipeline compiled for the overlay's KFP backend give them, and the platform's own
NetworkPolicies where they also decide (transcribed, with their source, in PLATFORM_POLICIES).
On the Kubeflow platform the Istio mesh decides as well (``mesh.py``): which pods get a sidecar,
whether a sidecar reaches istiod, and the platform's AuthorizationPolicies (PLATFORM_MESH_POLICIES).
"""

import copy
import functools
import os
import shutil
import subprocess

import pytest
import yaml
from mesh import Mesh, Request
from netpol import Address, Cluster, Pod, selector_matches

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")

PROFILE = {"app.kubernetes.io/part-of": "kubeflow-profile"}
#: Every pod of a KFP v2 run (argocompiler/argo.go), and the annotation KFP's API server adds to every
#: template of a run (backend/src/apiserver/template/v2_template.go, 2.5.0: no sidecar in run pods).
PIPELINE = {"pipelines.kubeflow.org/v2_component": "true"}
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
OWNER = "user@example.com"


def _ingress_policy(name, namespace, selector, rules):
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace},
            "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": rules}}


def _from_namespaces(*selectors, ports=None):
    rule = {"from": [{"namespaceSelector": s} for s in selectors]}
    return {**rule, "ports": ports} if ports else rule


_PROFILES = {"matchExpressions": [{"key": "app.kubernetes.io/part-of", "operator": "In",
                                   "values": ["kubeflow-profile"]}]}
_ISTIO = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["istio-system"]}]}
_SAME = {"from": [{"podSelector": {}}]}

#: The platform's own ingress policies on the services our pods reach. Sources:
#: kubeflow/manifests v1.10.2 common/networkpolicies/base/{ml-pipeline,metadata-grpc-server,minio}.yaml;
#: kubeflow/pipelines 2.17.0 manifests/kustomize/third-party/seaweedfs/base/seaweedfs/seaweedfs-networkpolicy.yaml.
PLATFORM_POLICIES = {
    "ml-pipeline": _ingress_policy("ml-pipeline", "kubeflow", {"matchLabels": {"app": "ml-pipeline"}},
                                   [_from_namespaces(_PROFILES, _ISTIO)]),
    "metadata-grpc-server": _ingress_policy(
        "metadata-grpc-server", "kubeflow", {"matchLabels": {"component": "metadata-grpc-server"}},
        [{"from": [{"namespaceSelector": _PROFILES}, {"podSelector": {}}]}]),
    "minio": _ingress_policy("minio", "kubeflow", {"matchLabels": {"app": "minio"}},
                             [{"from": [{"namespaceSelector": _PROFILES}, {"namespaceSelector": _ISTIO},
                                        {"podSelector": {}}]}]),
    "seaweedfs": _ingress_policy("seaweedfs", "kubeflow", {"matchLabels": {"app": "seaweedfs"}},
                                 [_from_namespaces(_PROFILES, ports=[{"port": 8333}]), _from_namespaces(_ISTIO),
                                  {**_SAME, "ports": [{"port": 8333}]}]),
}


def _authz(name, namespace, rules, selector=None, action="ALLOW"):
    spec = {"action": action, "rules": rules} if rules is not None else {}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    return {"kind": "AuthorizationPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


_KFP_PRINCIPALS = [f"cluster.local/ns/kubeflow/sa/{sa}" for sa in (
    "ml-pipeline", "ml-pipeline-ui", "ml-pipeline-persistenceagent", "ml-pipeline-scheduledworkflow",
    "ml-pipeline-viewer-crd-service-account", "kubeflow-pipelines-cache")]


def platform_mesh_policies(profile_namespace):
    """The Istio AuthorizationPolicies of Kubeflow 1.10.2 on what our flows reach, transcribed. Sources:
    kubeflow/manifests v1.10.2 common/istio/istio-install/base/deny_all_authorizationpolicy.yaml
    (global-deny-all), gateway_authorizationpolicy.yaml; applications/pipeline/upstream/base/installs/
    multi-user/istio-authorization-config.yaml (ml-pipeline; = kubeflow/pipelines 2.5.0), .../metadata/
    options/istio, third-party/minio/options/istio; common/knative/knative-serving/base/
    istio-authorization-policy.yaml; kubeflow/kubeflow v1.10.0 components/profile-controller/controllers/
    profile_controller.go (ns-owner-access-istio); kubeflow/pipelines 2.5.0 pipelines-profile-controller/
    sync.py (ml-pipeline-visualizationserver). The gateway's CUSTOM (oauth2-proxy) and DENY (JWT)
    policies judge requests into the gateway, not its requests to the model server: not modelled."""
    return [
        _authz("global-deny-all", "istio-system", None),
        _authz("istio-ingressgateway", "istio-system", [{}], {"app": "istio-ingressgateway"}),
        _authz("ml-pipeline", "kubeflow", [
            {"from": [{"source": {"principals": _KFP_PRINCIPALS}}]},
            {"when": [{"key": "request.headers[kubeflow-userid]", "notValues": ["*"]}]}], {"app": "ml-pipeline"}),
        _authz("metadata-grpc-service", "kubeflow", [{}], {"component": "metadata-grpc-server"}),
        _authz("minio-service", "kubeflow", [
            {"from": [{"source": {"principals": ["cluster.local/ns/kubeflow/sa/ml-pipeline"]}}]},
            {"from": [{"source": {"principals": ["cluster.local/ns/kubeflow/sa/ml-pipeline-ui"]}}]},
            {}], {"app": "minio"}),
        _authz("activator-service", "knative-serving", [{}], {"app": "activator"}),
        _authz("autoscaler", "knative-serving", [{}], {"app": "autoscaler"}),
        _authz("ns-owner-access-istio", profile_namespace, [
            {"from": [{"source": {"principals": [
                "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
                "cluster.local/ns/kubeflow/sa/ml-pipeline-ui"]}}],
             "when": [{"key": "request.headers[kubeflow-userid]", "values": [OWNER]}]},
            {"when": [{"key": "source.namespace", "values": [profile_namespace]}]},
            {"to": [{"operation": {"paths": ["/healthz", "/metrics", "/wait-for-drain"]}}]},
            {"from": [{"source": {"principals": ["cluster.local/ns/kubeflow/sa/notebook-controller-service-account"]}}],
             "to": [{"operation": {"methods": ["GET"], "paths": ["*/api/kernels"]}}]}]),
        _authz("ml-pipeline-visualizationserver", profile_namespace, [
            {"from": [{"source": {"principals": ["cluster.local/ns/kubeflow/sa/ml-pipeline"]}}]}],
            {"app": "ml-pipeline-visualizationserver"}),
    ]


#: Each overlay: the namespace its pods live in, that namespace's labels when the overlay does not
#: create it (a profile namespace is labelled by the profile controller: part-of and, with Istio,
#: istio-injection=enabled), where pipeline pods run, the object store (a pod, or an address
#: outside), which platform policies exist, and whether the platform runs Istio (Kubeflow 1.10.2:
#: kubeflow and knative-serving are injected, common/kubeflow-namespace/base/namespace.yaml and
#: common/knative/knative-serving/base/patches/namespace-injection.yaml).
OVERLAYS = {
    "kubeflow-platform": {"namespace": "kubeflow-user-example-com", "labels": PROFILE, "pipeline_namespace": None,
                          "store": ("minio", 9000), "platform": ["ml-pipeline", "metadata-grpc-server", "minio"],
                          "mesh": True},
    "prod": {"namespace": "ml-production", "labels": PROFILE, "pipeline_namespace": None,
             "store": ("external-s3", 443), "platform": ["ml-pipeline", "metadata-grpc-server"], "mesh": True},
    "standalone-kfp": {"namespace": "kfp-ct", "labels": None, "pipeline_namespace": "kubeflow",
                       "store": ("seaweedfs", 8333), "platform": ["seaweedfs"], "mesh": False},
}


def render(overlay):
    result = subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, "manifests", "overlays", overlay)],
                            capture_output=True, text=True, check=True)
    return [o for o in yaml.safe_load_all(result.stdout) if o]


@functools.cache
def pipeline_pod_labels(overlay):
    """Executor -> the pod labels of the pipeline compiled for the overlay's KFP backend."""
    import tempfile

    from pipelines.ct import targets
    from pipelines.ct.compile import compile_to, pipelines

    chosen = targets.deployment(overlay)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "ct.yaml")
        compile_to(pipelines()[0][0], path, "", chosen.target.name, chosen.defaults)
        configs = targets.executor_configs(open(path, encoding="utf-8").read())
    return {name: dict(config.get("podMetadata", {}).get("labels", {})) for name, config in configs.items()}


def _ours(objects, role):
    """Our Deployment's pod (ct-<role>) as its template makes it: labels, annotations, service account."""
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == f"ct-{role}")
    template = deployment["spec"]["template"]
    return Pod(role, deployment["metadata"]["namespace"], dict(template["metadata"].get("labels") or {}),
               dict(template["metadata"].get("annotations") or {}),
               template["spec"].get("serviceAccountName", "default"))


def model(overlay, objects=None, predictor_labels=None):
    """(cluster, mesh or None, endpoints by role) for an overlay (its rendering, or ``objects``)."""
    from components.deploy.cluster import PREDICTOR_LABELS

    config = OVERLAYS[overlay]
    objects = render(overlay) if objects is None else objects
    app = config["namespace"]
    namespace_object = next((o for o in objects if o["kind"] == "Namespace"), None)
    app_labels = dict(namespace_object["metadata"].get("labels", {}) if namespace_object else config["labels"])
    if config["mesh"]:
        app_labels["istio-injection"] = "enabled"  # profile_controller.go, v1.10.0
    pipeline_ns = config["pipeline_namespace"] or app
    # Every policy to the API server names the same control plane (the overlay sets it once per policy).
    apiserver_cidrs = {o["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] for o in objects
                       if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-to-apiserver")}
    assert len(apiserver_cidrs) == 1, f"{overlay}: the policies to the API server name {apiserver_cidrs}"
    apiserver_cidr = apiserver_cidrs.pop()
    executors = pipeline_pod_labels(overlay)
    pods = {
        "dns": Pod("dns", "kube-system", {"k8s-app": "kube-dns"}),
        "istiod": Pod("istiod", "istio-system", {"app": "istiod"}),
        "ml-pipeline": Pod("ml-pipeline", "kubeflow", {"app": "ml-pipeline"}, service_account="ml-pipeline"),
        "ml-pipeline-ui": Pod("ml-pipeline-ui", "kubeflow", {"app": "ml-pipeline-ui"},
                              service_account="ml-pipeline-ui"),
        "mlmd": Pod("mlmd", "kubeflow", {"component": "metadata-grpc-server"}),
        "minio": Pod("minio", "kubeflow", {"app": "minio"}),
        "seaweedfs": Pod("seaweedfs", "kubeflow", {"app": "seaweedfs"}),
        "gateway": Pod("gateway", "istio-system", {"app": "istio-ingressgateway"},
                       service_account="istio-ingressgateway-service-account"),
        "activator": Pod("activator", "knative-serving", {"app": "activator", "sidecar.istio.io/inject": "true"},
                         service_account="activator"),
        "autoscaler": Pod("autoscaler", "knative-serving", {"app": "autoscaler", "sidecar.istio.io/inject": "true"},
                          service_account="controller"),
        "pipeline-driver": Pod("pipeline-driver", pipeline_ns, dict(PIPELINE), dict(NO_SIDECAR), "ct-pipeline-runner"),
        "pipeline-task": Pod("pipeline-task", pipeline_ns, {**PIPELINE, **executors["exec-train"]}, dict(NO_SIDECAR),
                             "ct-pipeline-runner"),
        "feature-task": Pod("feature-task", pipeline_ns, {**PIPELINE, **executors["exec-join-features"]},
                            dict(NO_SIDECAR), "ct-pipeline-runner"),
        "other-pipeline-task": Pod("other-pipeline-task", pipeline_ns, dict(PIPELINE), dict(NO_SIDECAR)),
        "feature-server": _ours(objects, "feature-server"),
        "redis": _ours(objects, "redis"),
        "predictor": Pod("predictor", app, {"serving.kserve.io/inferenceservice": "any-model",
                                            **(PREDICTOR_LABELS if predictor_labels is None else predictor_labels)},
                         service_account="ct-serving"),
        "monitor": _ours(objects, "monitor"),
        "watcher": _ours(objects, "watcher"),
        "releaser": _ours(objects, "releaser"),
        "notebook": Pod("notebook", app, {"notebook-name": "scratch"}, service_account="default-editor"),
        "monitor-client": Pod("monitor-client", app, {"kfp-ct/monitor-client": "true"}),
        "inference-client": Pod("inference-client", app, {"kfp-ct/inference-client": "true"}),
    }
    if config["mesh"]:  # a profile's own KFP services (pipelines-profile-controller/sync.py, 2.5.0), injected
        pods["ui-artifact"] = Pod("ui-artifact", app, {"app": "ml-pipeline-ui-artifact"},
                                  service_account="default-editor")
        pods["visualizationserver"] = Pod("visualizationserver", app, {"app": "ml-pipeline-visualizationserver"},
                                          service_account="default-editor")
    endpoints = {**pods, "apiserver": Address("apiserver", apiserver_cidr.split("/")[0]),
                 "external-s3": Address("external-s3", "198.51.100.10"),
                 "internet": Address("internet", "93.184.216.34")}
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    policies += [PLATFORM_POLICIES[name] for name in config["platform"]]
    injected = {"istio-injection": "enabled"} if config["mesh"] else {}
    namespaces = {"kube-system": {}, "kubeflow": dict(injected), "istio-system": {}, "knative-serving": dict(injected),
                  app: app_labels or {}}
    cluster = Cluster(namespaces, list(pods.values()), policies)
    mesh = Mesh(cluster, pods["istiod"], platform_mesh_policies(app)) if config["mesh"] else None
    return cluster, mesh, endpoints


BEARER = Request(headers={"authorization": "Bearer <projected token, audience pipelines.kubeflow.org>"})


def flows(overlay):
    """(source, destination, port, protocol, request, must be allowed) for an overlay."""
    store, store_port = OVERLAYS[overlay]["store"]
    ours = OVERLAYS[overlay]["pipeline_namespace"] is None  # the pipeline pods run under our policies
    required = [
        ("predictor", "dns", 53, "UDP"), ("monitor", "dns", 53, "UDP"), ("watcher", "dns", 53, "TCP"),
        ("gateway", "predictor", 8012, "TCP"), ("activator", "predictor", 8012, "TCP"),
        ("autoscaler", "predictor", 9090, "TCP"), ("gateway", "predictor", 8080, "TCP"),
        ("gateway", "predictor", 9081, "TCP"), ("inference-client", "predictor", 8080, "TCP"),
        ("predictor", "monitor", 8080, "TCP"), ("monitor-client", "monitor", 8080, "TCP"),
        ("watcher", "monitor", 8080, "TCP"), ("watcher", "ml-pipeline", 8888, "TCP", BEARER),
        ("predictor", store, store_port, "TCP"), ("monitor", store, store_port, "TCP"),
        ("watcher", store, store_port, "TCP"),
        ("predictor", "feature-server", 6566, "TCP"), ("monitor", "feature-server", 6566, "TCP"),
        ("feature-server", "redis", 6379, "TCP"), ("feature-server", store, store_port, "TCP"),
        ("feature-server", "dns", 53, "UDP"), ("feature-task", "redis", 6379, "TCP"),
        # Not ours, not fenced by us: the user's pods and other pipelines keep their egress.
        ("notebook", "internet", 443, "TCP"), ("other-pipeline-task", "internet", 443, "TCP"),
        ("pipeline-driver", "ml-pipeline", 8887, "TCP"), ("pipeline-driver", "mlmd", 8080, "TCP"),
        # The releaser applies experiment decisions: the registry, then the InferenceService.
        ("releaser", "dns", 53, "UDP"), ("releaser", store, store_port, "TCP"),
        ("releaser", "apiserver", 6443, "TCP"), ("releaser", "apiserver", 443, "TCP"),
    ]
    forbidden = [
        ("notebook", "monitor", 8080, "TCP"), ("notebook", "predictor", 8080, "TCP"),
        ("internet", "monitor", 8080, "TCP"), ("internet", "predictor", 8080, "TCP"),
        ("predictor", "ml-pipeline", 8887, "TCP"), ("predictor", "mlmd", 8080, "TCP"),
        ("predictor", "apiserver", 6443, "TCP"), ("predictor", "internet", 443, "TCP"),
        ("monitor", "apiserver", 6443, "TCP"), ("monitor", "mlmd", 8080, "TCP"), ("monitor", "internet", 443, "TCP"),
        ("watcher", "apiserver", 6443, "TCP"), ("watcher", "mlmd", 8080, "TCP"),
        ("watcher", "ml-pipeline", 8887, "TCP"), ("monitor", "predictor", 8080, "TCP"),
        ("predictor", "dns", 80, "TCP"),
        ("notebook", "feature-server", 6566, "TCP"), ("notebook", "redis", 6379, "TCP"),
        ("predictor", "redis", 6379, "TCP"), ("monitor", "redis", 6379, "TCP"),
        ("feature-server", "internet", 443, "TCP"), ("redis", "internet", 443, "TCP"),
        ("pipeline-task", "redis", 6379, "TCP"), ("internet", "feature-server", 6566, "TCP"),
        ("other-pipeline-task", "redis", 6379, "TCP"), ("other-pipeline-task", "monitor", 8080, "TCP"),
        # The releaser receives nothing and reaches only the registry and the API server.
        ("releaser", "internet", 443, "TCP"), ("releaser", "monitor", 8080, "TCP"), ("releaser", "mlmd", 8080, "TCP"),
        ("releaser", "ml-pipeline", 8888, "TCP"), ("releaser", "predictor", 8080, "TCP"),
        ("releaser", "redis", 6379, "TCP"), ("notebook", "releaser", 8080, "TCP"),
        ("monitor", "releaser", 8080, "TCP"), ("predictor", "releaser", 8080, "TCP"),
    ]
    if OVERLAYS[overlay]["mesh"]:
        required += [
            # A profile's own KFP services keep working beside ours (their sidecars reach istiod).
            ("ml-pipeline-ui", "ui-artifact", 3000, "TCP", Request(headers={"kubeflow-userid": OWNER})),
            ("ml-pipeline", "visualizationserver", 8888, "TCP"), ("notebook", "istiod", 15012, "TCP"),
        ]
    if ours:
        required += [
            ("pipeline-driver", "dns", 53, "UDP"), ("pipeline-driver", "apiserver", 6443, "TCP"),
            ("pipeline-driver", "apiserver", 443, "TCP"), ("pipeline-task", "mlmd", 8080, "TCP"),
            ("pipeline-task", "ml-pipeline", 8887, "TCP"), ("pipeline-task", "apiserver", 6443, "TCP"),
            ("pipeline-task", store, store_port, "TCP"), ("feature-task", store, store_port, "TCP"),
            ("pipeline-task", "dns", 53, "UDP"),
        ]
        forbidden += [
            ("pipeline-task", "internet", 443, "TCP"), ("pipeline-task", "monitor", 8080, "TCP"),
            ("pipeline-task", "ml-pipeline", 8888, "TCP"), ("feature-task", "internet", 443, "TCP"),
        ]
    with_request = [f if len(f) == 5 else (*f, None) for f in required + forbidden]
    return [(*f, i < len(required)) for i, f in enumerate(with_request)]


def wrong_flows(overlay, cluster, mesh, endpoints):
    wrong = []
    for source, destination, port, protocol, request, expected in flows(overlay):
        src, dst = endpoints[source], endpoints[destination]
        if mesh is None:
            allowed, why = cluster.allows(src, dst, port, protocol), "NetworkPolicies"
        else:
            allowed, why = mesh.allows(src, dst, port, protocol, request)
        if allowed != expected:
            wrong.append(f"{source} -> {destination}:{port}/{protocol} should be "
                         f"{'open' if expected else 'closed'}" + (f" ({why})" if why else ""))
    return wrong


@needs_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_exactly_the_needed_flows_are_open(overlay):
    cluster, mesh, endpoints = model(overlay)
    wrong = wrong_flows(overlay, cluster, mesh, endpoints)
    assert not wrong, f"{overlay}:\n" + "\n".join(wrong)


@needs_kubectl
def test_on_kubeflow_our_pods_have_no_sidecar_and_the_mesh_admits_every_flow_they_need():
    """The mesh decides nothing against us because our pods opt out of injection; with sidecars (our
    labels removed) the first run would fail as it did: the proxies never reach istiod under our
    default deny, and with istiod reachable the platform's policies refuse KFP's plain-text pods."""
    cluster, mesh, endpoints = model("kubeflow-platform")
    for role in ("monitor", "watcher", "feature-server", "redis", "predictor", "pipeline-task", "feature-task"):
        assert not mesh.has_sidecar(endpoints[role]), role
    assert mesh.has_sidecar(endpoints["notebook"]) and mesh.has_sidecar(endpoints["ml-pipeline"])
    # The platform services we call keep their sidecars; their policies admit plain-text clients.
    assert mesh.authorizes(endpoints["watcher"], endpoints["ml-pipeline"], 8888, BEARER) == (True, "ALLOW ml-pipeline")
    assert mesh.authorizes(endpoints["pipeline-task"], endpoints["minio"], 9000, Request())[0]
    assert mesh.authorizes(endpoints["pipeline-task"], endpoints["ml-pipeline"], 8887,
                           Request(headers={"kubeflow-userid": OWNER})) == (False, "no ALLOW policy matches "
                                                                             "(global-deny-all, ml-pipeline)")

    objects = copy.deepcopy(render("kubeflow-platform"))
    for o in objects:
        if o["kind"] == "Deployment":
            o["spec"]["template"]["metadata"]["labels"].pop("sidecar.istio.io/inject")
    from components.deploy.cluster import PREDICTOR_LABELS

    injected = {k: v for k, v in PREDICTOR_LABELS.items() if k != "sidecar.istio.io/inject"}
    cluster, mesh, endpoints = model("kubeflow-platform", objects, injected)
    wrong = "\n".join(wrong_flows("kubeflow-platform", cluster, mesh, endpoints))
    assert "monitor -> dns:53/UDP should be open (monitor's sidecar cannot reach istiod: the pod never starts)" in wrong
    assert "feature-task -> redis:6379/TCP should be open (redis's sidecar cannot reach istiod" in wrong
    # Give the sidecars their istiod egress: KFP's sidecar-less pods are refused by the platform's policies.
    objects.append({"kind": "NetworkPolicy",
                    "metadata": {"name": "allow-istiod", "namespace": "kubeflow-user-example-com"},
                    "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}},
                        "podSelector": {"matchLabels": {"app": "istiod"}}}], "ports": [{"port": 15012}]}]}})
    cluster, mesh, endpoints = model("kubeflow-platform", objects, injected)
    wrong = "\n".join(wrong_flows("kubeflow-platform", cluster, mesh, endpoints))
    assert ("feature-task -> redis:6379/TCP should be open (no ALLOW policy matches (global-deny-all, "
            "ns-owner-access-istio))") in wrong


def test_the_mesh_model_follows_istio_s_rules():
    a = Pod("a", "one", {"role": "a"}, service_account="sa-a")
    plain = Pod("p", "one", {"role": "p", "sidecar.istio.io/inject": "false"})
    server = Pod("s", "two", {"app": "s"})
    istiod = Pod("istiod", "istio-system", {"app": "istiod"})
    cluster = Cluster({"one": {"istio-injection": "enabled"}, "two": {"istio-injection": "enabled"},
                       "istio-system": {}}, [a, plain, server, istiod], [])
    only_a = _authz("only-a", "two", [{"from": [{"source": {"principals": ["cluster.local/ns/one/sa/sa-a"]}}]}],
                    {"app": "s"})
    mesh = Mesh(cluster, istiod, [_authz("deny-all", "istio-system", None), only_a])
    assert mesh.has_sidecar(a) and not mesh.has_sidecar(plain) and mesh.has_sidecar(server)
    assert mesh.allows(a, server, 80) == (True, "")
    assert mesh.allows(plain, server, 80) == (False, "no ALLOW policy matches (deny-all, only-a)")  # plain text
    header = _authz("no-header", "two", [{"when": [{"key": "request.headers[x-user]", "notValues": ["*"]}]}])
    mesh = Mesh(cluster, istiod, [header])
    assert mesh.allows(plain, server, 80)[0] and not mesh.allows(plain, server, 80, request=Request({"x-user": "u"}))[0]
    deny = _authz("deny-port", "two", [{"to": [{"operation": {"ports": ["81"]}}]}], {"app": "s"}, action="DENY")
    mesh = Mesh(cluster, istiod, [deny])
    assert mesh.allows(a, server, 80)[0] and mesh.allows(a, server, 81) == (False, "DENY deny-port")
    fenced = Cluster(cluster.namespaces, cluster.pods, [{"metadata": {"name": "d", "namespace": "one"},
                                                         "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}])
    mesh = Mesh(fenced, istiod, [])
    assert mesh.allows(a, server, 80) == (False, "a's sidecar cannot reach istiod: the pod never starts")
    assert mesh.allows(server, plain, 80) == (True, "")  # a sidecar-less pod needs no istiod
    with pytest.raises(ValueError, match="ipBlocks"):
        Mesh(cluster, istiod, [_authz("x", "two", [{"from": [{"source": {"ipBlocks": ["1.2.3.4"]}}]}])]).allows(
            a, server, 80)


def test_every_overlay_is_in_the_flow_table():
    overlays = set(os.listdir(os.path.join(ROOT, "manifests", "overlays")))
    assert overlays == set(OVERLAYS), "add the overlay to OVERLAYS with its cluster model"


# ----- the evaluator itself -----

def _policy(namespace, selector, types, ingress=None, egress=None):
    spec = {"podSelector": selector, "policyTypes": types}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_evaluator_semantics():
    a, b = Pod("a", "one", {"role": "a"}), Pod("b", "two", {"role": "b"})
    outside = Address("x", "203.0.113.5")
    open_cluster = Cluster({"one": {}, "two": {"team": "t"}}, [a, b], [])
    assert open_cluster.allows(a, b, 80)  # nothing selects them: open
    deny = _policy("two", {}, ["Ingress"])
    assert not Cluster({"one": {}, "two": {}}, [a, b], [deny]).allows(a, b, 80)
    by_namespace = _policy("two", {}, ["Ingress"], ingress=[{"from": [{"namespaceSelector": {
        "matchLabels": {"kubernetes.io/metadata.name": "one"}}, "podSelector": {"matchLabels": {"role": "a"}}}],
        "ports": [{"port": 80, "endPort": 90}]}])
    cluster = Cluster({"one": {}, "two": {}}, [a, b], [by_namespace])
    assert cluster.allows(a, b, 85) and not cluster.allows(a, b, 91) and not cluster.allows(a, b, 85, "UDP")
    same_namespace_only = _policy("two", {}, ["Ingress"], ingress=[{"from": [{"podSelector": {}}]}])
    assert not Cluster({"one": {}, "two": {}}, [a, b], [same_namespace_only]).allows(a, b, 80)
    egress = _policy("one", {"matchLabels": {"role": "a"}}, ["Egress"],
                     egress=[{"to": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.5/32"]}}]}])
    cluster = Cluster({"one": {}, "two": {}}, [a, b], [egress])
    assert not cluster.allows(a, outside, 443) and not cluster.allows(a, b, 80)
    assert cluster.allows(a, Address("y", "203.0.113.6"), 443)
    assert selector_matches({"matchExpressions": [{"key": "k", "operator": "NotIn", "values": ["v"]}]}, {"k": "w"})
    assert not selector_matches({"matchExpressions": [{"key": "k", "operator": "Exists"}]}, {})
