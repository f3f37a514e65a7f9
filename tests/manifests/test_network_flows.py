"""Every flow the system needs is open and every other one tried here is closed, on each rendered overlay.

The rendered NetworkPolicies of an overlay are evaluated (``netpol.py``) on a model of the
cluster it targets: the platform's pods with the labels their upstream manifests give them,
our pods, and the platform's own NetworkPolicies where they also decide (transcribed, with
their source, in PLATFORM_POLICIES).
"""

import os
import shutil
import subprocess

import pytest
import yaml
from netpol import Address, Cluster, Pod, selector_matches

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")

PROFILE = {"app.kubernetes.io/part-of": "kubeflow-profile"}
PIPELINE = {"pipelines.kubeflow.org/v2_component": "true"}  # every pod of a KFP v2 run (argocompiler/argo.go)
S3_CLIENT = {"kfp-ct/s3-client": "true"}
ONLINE_STORE_CLIENT = {"kfp-ct/online-store-client": "true"}  # the feature steps (pipelines/ct/pipeline.py)


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

#: Each overlay: the namespace its pods live in, that namespace's labels when the overlay does not
#: create it (a profile namespace is labelled by the profile controller), where pipeline pods run,
#: the object store (a pod, or an address outside), and which platform policies exist.
OVERLAYS = {
    "kubeflow-platform": {"namespace": "kubeflow-user-example-com", "labels": PROFILE, "pipeline_namespace": None,
                          "store": ("minio", 9000), "platform": ["ml-pipeline", "metadata-grpc-server", "minio"]},
    "prod": {"namespace": "ml-production", "labels": PROFILE, "pipeline_namespace": None,
             "store": ("external-s3", 443), "platform": ["ml-pipeline", "metadata-grpc-server"]},
    "standalone-kfp": {"namespace": "kfp-ct", "labels": None, "pipeline_namespace": "kubeflow",
                       "store": ("seaweedfs", 8333), "platform": ["seaweedfs"]},
}


def render(overlay):
    result = subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, "manifests", "overlays", overlay)],
                            capture_output=True, text=True, check=True)
    return [o for o in yaml.safe_load_all(result.stdout) if o]


def model(overlay):
    """(cluster, endpoints by role) for an overlay."""
    config = OVERLAYS[overlay]
    objects = render(overlay)
    app = config["namespace"]
    namespace_object = next((o for o in objects if o["kind"] == "Namespace"), None)
    app_labels = namespace_object["metadata"].get("labels", {}) if namespace_object else config["labels"]
    pipeline_ns = config["pipeline_namespace"] or app
    apiserver_cidr = next((o["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] for o in objects
                           if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "allow-pipeline-to-apiserver"),
                          "10.0.0.1/32")
    pods = {
        "dns": Pod("dns", "kube-system", {"k8s-app": "kube-dns"}),
        "ml-pipeline": Pod("ml-pipeline", "kubeflow", {"app": "ml-pipeline"}),
        "mlmd": Pod("mlmd", "kubeflow", {"component": "metadata-grpc-server"}),
        "minio": Pod("minio", "kubeflow", {"app": "minio"}),
        "seaweedfs": Pod("seaweedfs", "kubeflow", {"app": "seaweedfs"}),
        "gateway": Pod("gateway", "istio-system", {"app": "istio-ingressgateway"}),
        "activator": Pod("activator", "knative-serving", {"app": "activator"}),
        "autoscaler": Pod("autoscaler", "knative-serving", {"app": "autoscaler"}),
        "pipeline-driver": Pod("pipeline-driver", pipeline_ns, dict(PIPELINE)),
        "pipeline-task": Pod("pipeline-task", pipeline_ns, {**PIPELINE, **S3_CLIENT}),
        "feature-task": Pod("feature-task", pipeline_ns, {**PIPELINE, **S3_CLIENT, **ONLINE_STORE_CLIENT}),
        "feature-server": Pod("feature-server", app, {"app.kubernetes.io/name": "ct-feature-server", **S3_CLIENT}),
        "redis": Pod("redis", app, {"app.kubernetes.io/name": "ct-redis"}),
        "predictor": Pod("predictor", app, {"serving.kserve.io/inferenceservice": "any-model",
                                            "kfp-ct/predictor": "true", **S3_CLIENT}),
        "monitor": Pod("monitor", app, {"app.kubernetes.io/name": "ct-monitor", **S3_CLIENT}),
        "watcher": Pod("watcher", app, {"app.kubernetes.io/name": "ct-watcher", **S3_CLIENT}),
        "notebook": Pod("notebook", app, {"notebook-name": "scratch"}),
        "monitor-client": Pod("monitor-client", app, {"kfp-ct/monitor-client": "true"}),
        "inference-client": Pod("inference-client", app, {"kfp-ct/inference-client": "true"}),
    }
    endpoints = {**pods, "apiserver": Address("apiserver", apiserver_cidr.split("/")[0]),
                 "external-s3": Address("external-s3", "198.51.100.10"),
                 "internet": Address("internet", "93.184.216.34")}
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    policies += [PLATFORM_POLICIES[name] for name in config["platform"]]
    namespaces = {"kube-system": {}, "kubeflow": {}, "istio-system": {}, "knative-serving": {}, app: app_labels or {}}
    return Cluster(namespaces, list(pods.values()), policies), endpoints


def flows(overlay):
    """(source, destination, port, protocol, must be allowed) for an overlay."""
    store, store_port = OVERLAYS[overlay]["store"]
    ours = OVERLAYS[overlay]["pipeline_namespace"] is None  # the pipeline pods run under our policies
    required = [
        ("predictor", "dns", 53, "UDP"), ("monitor", "dns", 53, "UDP"), ("watcher", "dns", 53, "TCP"),
        ("gateway", "predictor", 8012, "TCP"), ("activator", "predictor", 8012, "TCP"),
        ("autoscaler", "predictor", 9090, "TCP"), ("gateway", "predictor", 8080, "TCP"),
        ("gateway", "predictor", 9081, "TCP"), ("inference-client", "predictor", 8080, "TCP"),
        ("predictor", "monitor", 8080, "TCP"), ("monitor-client", "monitor", 8080, "TCP"),
        ("watcher", "monitor", 8080, "TCP"), ("watcher", "ml-pipeline", 8888, "TCP"),
        ("predictor", store, store_port, "TCP"), ("monitor", store, store_port, "TCP"),
        ("watcher", store, store_port, "TCP"),
        ("predictor", "feature-server", 6566, "TCP"), ("monitor", "feature-server", 6566, "TCP"),
        ("feature-server", "redis", 6379, "TCP"), ("feature-server", store, store_port, "TCP"),
        ("feature-server", "dns", 53, "UDP"), ("feature-task", "redis", 6379, "TCP"),
    ]
    forbidden = [
        ("notebook", "monitor", 8080, "TCP"), ("notebook", "predictor", 8080, "TCP"),
        ("internet", "monitor", 8080, "TCP"), ("internet", "predictor", 8080, "TCP"),
        ("predictor", "ml-pipeline", 8887, "TCP"), ("predictor", "mlmd", 8080, "TCP"),
        ("predictor", "apiserver", 6443, "TCP"), ("predictor", "internet", 443, "TCP"),
        ("monitor", "apiserver", 6443, "TCP"), ("monitor", "mlmd", 8080, "TCP"), ("monitor", "internet", 443, "TCP"),
        ("watcher", "apiserver", 6443, "TCP"), ("watcher", "mlmd", 8080, "TCP"),
        ("watcher", "ml-pipeline", 8887, "TCP"), ("notebook", store, store_port, "TCP"),
        ("monitor", "predictor", 8080, "TCP"), ("predictor", "dns", 80, "TCP"),
        ("notebook", "feature-server", 6566, "TCP"), ("notebook", "redis", 6379, "TCP"),
        ("predictor", "redis", 6379, "TCP"), ("monitor", "redis", 6379, "TCP"),
        ("feature-server", "internet", 443, "TCP"), ("redis", "internet", 443, "TCP"),
        ("pipeline-task", "redis", 6379, "TCP"), ("internet", "feature-server", 6566, "TCP"),
    ]
    if ours:
        required += [
            ("pipeline-driver", "dns", 53, "UDP"), ("pipeline-driver", "ml-pipeline", 8887, "TCP"),
            ("pipeline-driver", "mlmd", 8080, "TCP"), ("pipeline-driver", "apiserver", 6443, "TCP"),
            ("pipeline-driver", "apiserver", 443, "TCP"), ("pipeline-task", "mlmd", 8080, "TCP"),
            ("pipeline-task", "ml-pipeline", 8887, "TCP"), ("pipeline-task", "apiserver", 6443, "TCP"),
            ("pipeline-task", store, store_port, "TCP"), ("feature-task", store, store_port, "TCP"),
        ]
        forbidden += [
            ("pipeline-task", "internet", 443, "TCP"), ("pipeline-task", "monitor", 8080, "TCP"),
            ("pipeline-driver", store, store_port, "TCP"), ("pipeline-task", "ml-pipeline", 8888, "TCP"),
            ("notebook", "apiserver", 6443, "TCP"),
        ]
    return [(*f, True) for f in required] + [(*f, False) for f in forbidden]


@needs_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_exactly_the_needed_flows_are_open(overlay):
    cluster, endpoints = model(overlay)
    wrong = []
    for source, destination, port, protocol, expected in flows(overlay):
        if cluster.allows(endpoints[source], endpoints[destination], port, protocol) != expected:
            wrong.append(f"{source} -> {destination}:{port}/{protocol} should be {'open' if expected else 'closed'}")
    assert not wrong, f"{overlay}:\n" + "\n".join(wrong)


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
