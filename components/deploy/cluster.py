"""Deployment on a cluster: a KServe ``InferenceService`` per model, with canary, promote and rollback.

The predictor runs our serving image (the KServe model server with input
validation); KServe's storage initializer downloads ``storageUri`` (the
versioned model folder in S3) to ``/mnt/models``, with credentials from the
service account's S3 Secret (KServe's ``serving.kserve.io/s3-*`` annotations).
Objects are built with the kserve SDK models, so they are checked against the
InferenceService schema before they are sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Optional

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
#: ConfigMap of the cluster's feature store (manifests/components/feature-store): its server's URL for the model server.
FEATURE_STORE_CONFIG = "ct-feature-store"
#: KServe's deployment modes: Knative (formerly Serverless) splits traffic by revision and honours
#: canaryTrafficPercent (kserve reconcilers/knative/ksvc_reconciler.go, the only reader of it up
#: to 0.19); Standard (formerly RawDeployment) runs one Deployment, which the new version
#: replaces at once. We take either spelling.
CANARY_MODES = ("Knative", "Serverless")
MODES = CANARY_MODES + ("Standard", "RawDeployment")
#: The annotation value each supported KServe version understands, per mode (pkg/constants/constants.go
#: and GetDeploymentMode in pkg/controller/v1beta1/inferenceservice/utils/utils.go): 0.14 and 0.15 know
#: only Serverless / RawDeployment and silently fall back to the cluster's default for any other value
#: (Standard, Knative); 0.16 knows Knative / Standard and normalizes the old names into
#: status.deploymentMode, but its webhook (validateDeploymentMode) then refuses every later update
#: that keeps an old-name annotation (fixed in 0.17): each version gets its own names.
KSERVE_MODE_NAMES = {
    "0.14": {"knative": "Serverless", "standard": "RawDeployment"},
    "0.15": {"knative": "Serverless", "standard": "RawDeployment"},
    "0.16": {"knative": "Knative", "standard": "Standard"},
}
#: Kubeflow 1.10's KServe.
DEFAULT_KSERVE_VERSION = "0.15"
#: Server-side field validation of our writes: a field the CRD does not declare is refused (400),
#: not pruned in silence as under the API server's default (Warn) (Kubernetes API concepts, "Field
#: validation", GA in 1.27): a typo cannot drop a setting such as canaryTrafficPercent.
FIELD_VALIDATION = "Strict"
#: The predictor pod's labels (KServe copies spec.predictor.labels onto the pod in both modes:
#: buildObjectMeta in pkg/controller/v1beta1/inferenceservice/components/predictor.go, v0.15.2 and
#: v0.16.0). kfp-ct/s3-client: its storage initializer downloads the model, the label admits it to
#: the object store (manifests/components/store-*/s3-egress.yaml). kfp-ct/predictor: the
#: NetworkPolicies' selector of the model server, whatever the model's name; part-of: inside their
#: fence (manifests/base/networkpolicy.yaml). No Istio sidecar, as
#: for every pod of ours (manifests/base/kustomization.yaml says why; KServe sets none itself).
PREDICTOR_LABELS = {"kfp-ct/s3-client": "true", "kfp-ct/predictor": "true", "sidecar.istio.io/inject": "false",
                    "app.kubernetes.io/part-of": "kfp-ct"}


def mode_family(deployment_mode: str) -> str:
    """``knative`` or ``standard`` for a mode in either spelling.

    Raises:
        ValueError: Not a mode (ModelMesh is not supported: it serves no custom container).
    """
    if deployment_mode not in MODES:
        raise ValueError(f"deployment_mode must be one of {', '.join(MODES)}, got {deployment_mode!r}")
    return "knative" if deployment_mode in CANARY_MODES else "standard"


def annotation_mode(deployment_mode: str, kserve_version: str) -> str:
    """The ``serving.kserve.io/deploymentMode`` value a KServe version understands for a mode.

    Raises:
        ValueError: An unknown mode, or a KServe version this system does not support.
    """
    family = mode_family(deployment_mode)
    minor = ".".join(str(kserve_version).lstrip("v").split(".")[:2])
    if minor not in KSERVE_MODE_NAMES:
        raise ValueError(f"kserve_version {kserve_version!r} is not supported (supported: "
                         f"{', '.join(KSERVE_MODE_NAMES)})")
    return KSERVE_MODE_NAMES[minor][family]


def check_canary(deployment_mode: str, canary_traffic_percent: Optional[int]) -> None:
    """Refuses a canary that the deployment mode cannot split traffic for.

    Raises:
        ValueError: Unknown mode, or a canary share in a mode without revisions.
    """
    if canary_traffic_percent and 0 < canary_traffic_percent < 100 and mode_family(deployment_mode) != "knative":
        raise ValueError(
            f"canary_traffic_percent={canary_traffic_percent} needs KServe's Knative (Serverless) mode: in "
            f"{deployment_mode} mode KServe replaces the model's Deployment and the new version takes all "
            "traffic at once, so there is nothing to split or roll back to. Deploy with "
            "canary_traffic_percent=0, or with deployment_mode=Knative on a cluster with Knative")


def inference_service(name: str, namespace: str, storage_uri: str, image: str, service_account: str,
                      canary_traffic_percent: Optional[int] = None, logger_url: str = "",
                      deployment_mode: str = "Standard",
                      kserve_version: str = DEFAULT_KSERVE_VERSION) -> dict[str, Any]:
    """Builds the InferenceService for a model version, as the dict the Kubernetes API takes.

    Args:
        name: InferenceService (and model) name.
        namespace: Namespace it lives in.
        storage_uri: ``s3://bucket/prefix/<version>`` of the model folder.
        image: The serving runtime image.
        service_account: Service account whose Secret holds the S3 credentials.
        canary_traffic_percent: Share of traffic for this version while the
            previous one keeps the rest; None sends all traffic to it.
        logger_url: The monitor KServe's payload logger posts every request and
            response to ("" for none).
        deployment_mode: KServe's mode for this service (``MODES``), set as its annotation.
        kserve_version: The cluster's KServe (``KSERVE_MODE_NAMES``): which name the annotation takes.
    """
    from kserve import V1beta1InferenceService, V1beta1InferenceServiceSpec, V1beta1LoggerSpec, V1beta1PredictorSpec
    from kserve.api_client import ApiClient as KServeApiClient
    from kubernetes import client

    if canary_traffic_percent is not None and not 0 <= canary_traffic_percent <= 100:
        raise ValueError(f"canary_traffic_percent must be between 0 and 100, got {canary_traffic_percent}")
    container = client.V1Container(
        name="kserve-container",
        image=image,
        command=["python", "-m", "components.model_server", "serve", "--model-dir", "/mnt/models",
                 "--name", name, "--port", "8080", "--host", "0.0.0.0"],
        env=[client.V1EnvVar(name="STORAGE_URI", value=storage_uri),
             # Where the looked-up features requests leave out are found: the cluster's Feast feature server
             # (manifests/components/feature-store); absent, requests must carry every feature.
             client.V1EnvVar(name="FEATURE_SERVER_URL", value_from=client.V1EnvVarSource(
                 config_map_key_ref=client.V1ConfigMapKeySelector(name=FEATURE_STORE_CONFIG,
                                                                  key="FEATURE_SERVER_URL", optional=True)))],
        ports=[client.V1ContainerPort(container_port=8080, protocol="TCP")],
        resources=client.V1ResourceRequirements(requests={"cpu": "100m", "memory": "512Mi"},
                                                limits={"cpu": "1", "memory": "1Gi"}),
        security_context=client.V1SecurityContext(
            run_as_non_root=True, allow_privilege_escalation=False, read_only_root_filesystem=True,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")),
        readiness_probe=client.V1Probe(http_get=client.V1HTTPGetAction(path=f"/v1/models/{name}", port=8080)),
    )
    isvc = V1beta1InferenceService(
        api_version=f"{GROUP}/{VERSION}",
        kind="InferenceService",
        metadata=client.V1ObjectMeta(name=name, namespace=namespace,
                                     labels={"app.kubernetes.io/part-of": "kfp-ct"},
                                     annotations={MODE_ANNOTATION: annotation_mode(deployment_mode, kserve_version)}),
        spec=V1beta1InferenceServiceSpec(predictor=V1beta1PredictorSpec(
            labels=dict(PREDICTOR_LABELS),
            service_account_name=service_account,
            canary_traffic_percent=canary_traffic_percent,
            logger=V1beta1LoggerSpec(mode="all", url=logger_url) if logger_url else None,
            containers=[container],
        )),
    )
    serialized = KServeApiClient().sanitize_for_serialization(isvc)
    errors = schema_errors(serialized)
    if errors:
        raise ValueError("InferenceService does not match the kserve SDK models: " + "; ".join(errors))
    return serialized


def _model_class(type_name: str):
    import kserve
    from kubernetes import client

    return getattr(kserve, type_name, None) or getattr(client, type_name, None)


def schema_errors(value: Any, type_name: str = "V1beta1InferenceService", path: str = "") -> list[str]:
    """Checks a serialized object against the kserve and Kubernetes SDK models.

    Returns:
        One message per field the model does not know or whose value has the wrong shape.
    """
    import re

    list_match = re.fullmatch(r"(?:List|list)\[(.+)\]", type_name)
    dict_match = re.fullmatch(r"dict\((.+), (.+)\)", type_name)
    if list_match:
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [e for i, item in enumerate(value) for e in schema_errors(item, list_match.group(1), f"{path}[{i}]")]
    if dict_match:
        if not isinstance(value, dict):
            return [f"{path}: expected a map"]
        return [e for k, item in value.items() for e in schema_errors(item, dict_match.group(2), f"{path}.{k}")]
    model = _model_class(type_name)
    if model is None or not hasattr(model, "openapi_types"):
        return []  # a scalar or a free-form type
    if not isinstance(value, dict):
        return [f"{path}: expected an object of type {type_name}"]
    by_json_name = {json_name: attr for attr, json_name in model.attribute_map.items()}
    errors = []
    for key, item in value.items():
        if key not in by_json_name:
            errors.append(f"{path}.{key}: not a field of {type_name}")
        elif item is not None:
            errors.extend(schema_errors(item, model.openapi_types[by_json_name[key]], f"{path}.{key}"))
    return errors


class ClusterDeployer:
    """Creates and changes InferenceServices through the Kubernetes API (CustomObjectsApi)."""

    def __init__(self, api, namespace: str, kserve_version: str = DEFAULT_KSERVE_VERSION):
        """Args: api: a ``CustomObjectsApi``; namespace: where the services live; kserve_version: its KServe."""
        self.api = api
        self.namespace = namespace
        self.kserve_version = kserve_version

    def get(self, name: str) -> Optional[dict[str, Any]]:
        """The InferenceService, or None when it does not exist."""
        from kubernetes.client.rest import ApiException

        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, patch,
                                                       field_validation=FIELD_VALIDATION)

    def deploy(self, name: str, storage_uri: str, image: str, service_account: str,
               canary_traffic_percent: Optional[int] = None, logger_url: str = "",
               deployment_mode: str = "Standard") -> dict[str, Any]:
        """Creates the service, or moves it to a new model version (optionally as a canary).

        On an existing service with a canary share (Knative mode), KServe routes that share
        to the new revision and the rest to the last ready one. An empty ``logger_url``
        removes a payload logger set before.

        Raises:
            ValueError: A canary in a mode that cannot split traffic (``check_canary``).
        """
        check_canary(deployment_mode, canary_traffic_percent)
        desired = inference_service(name, self.namespace, storage_uri, image, service_account,
                                    canary_traffic_percent, logger_url, deployment_mode, self.kserve_version)
        if self.get(name) is None:
            desired["spec"]["predictor"].pop("canaryTrafficPercent", None)  # nothing to split with yet
            return self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, desired,
                                                            field_validation=FIELD_VALIDATION)
        # A JSON merge patch keeps what it does not name: a cleared logger must be named null.
        patch = {"metadata": {"annotations": desired["metadata"]["annotations"]},
                 "spec": {"predictor": {**desired["spec"]["predictor"], "logger": desired["spec"]["predictor"].get(
                     "logger"), "canaryTrafficPercent": canary_traffic_percent}}}
        return self._patch(name, patch)

    def predictor_status(self, name: str) -> dict[str, Any]:
        """``status.components.predictor`` of the service ({} when it has none yet)."""
        return (((self.get(name) or {}).get("status") or {}).get("components") or {}).get("predictor") or {}

    def _deployment(self, name: str) -> Optional[dict[str, Any]]:
        """The predictor's Deployment in Standard (raw) mode (``<name>-predictor``), or None."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        apps = client.AppsV1Api(self.api.api_client)
        try:
            return apps.read_namespaced_deployment(f"{name}-predictor", self.namespace).to_dict()
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def serves_latest(self, name: str, deployment_mode: str, revision_before: Optional[str] = None,
                      traffic: str = "latest") -> tuple[bool, str]:
        """Whether the service now serves what was last applied, and what it waits for if not.

        KServe's ``status.observedGeneration`` is the Knative Service's or the Deployment's counter,
        never the InferenceService's own generation, and the first status after a change can still
        be the old one with Ready=True (kserve 0.14-0.16, inference_service_status.go,
        ksvc_reconciler.go, deployment_reconciler.go). So: Knative mode waits for a new predictor
        revision (when one was asked for) that is both the latest created and the latest ready, and
        for ``traffic``: ``latest`` (all of it on that revision: the latest rolled out), ``canary``
        (split as asked), ``previous`` (none on it: a canary rolled back). Standard mode, whose
        status carries no revision, waits for the predictor's Deployment to have observed its
        generation with every replica updated and available. Ready=True in both.
        """
        service = self.get(name) or {}
        status = service.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        ready_condition = (conditions.get("Ready") or {}).get("status") == "True"
        if mode_family(deployment_mode) == "knative":
            predictor = (status.get("components") or {}).get("predictor") or {}
            created, ready = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
            if revision_before is not None and created == revision_before:
                return False, f"no new predictor revision yet (latest created {created})"
            if not created or created != ready:
                return False, f"predictor revision {created} is not the latest ready ({ready})"
            if traffic == "latest" and predictor.get("latestRolledoutRevision") not in (None, ready):
                return False, f"traffic still on {predictor.get('latestRolledoutRevision')}, not on {ready}"
            if traffic == "previous":
                share = sum(t.get("percent") or 0 for t in predictor.get("traffic") or []
                            if t.get("revisionName") == created)
                if share:
                    return False, f"{share}% of the traffic still on the canary revision {created}"
            return (True, "") if ready_condition else (False, "Ready is not True")
        deployment = self._deployment(name)
        if deployment is None:
            return False, f"Deployment {name}-predictor does not exist yet"
        spec, state = deployment.get("spec") or {}, deployment.get("status") or {}
        wanted = spec.get("replicas") or 1
        if (state.get("observed_generation") or 0) < (deployment["metadata"].get("generation") or 0):
            return False, f"Deployment {name}-predictor has not observed its generation yet"
        if not (state.get("updated_replicas") == wanted == (state.get("available_replicas") or 0)
                and (state.get("replicas") or 0) == wanted):
            return False, (f"Deployment {name}-predictor: {state.get('updated_replicas')} of {wanted} replicas "
                           f"updated, {state.get('available_replicas')} available, {state.get('replicas')} in all")
        return (True, "") if ready_condition else (False, "Ready is not True")

    def wait_ready(self, name: str, deployment_mode: str, revision_before: Optional[str] = None,
                   traffic: str = "latest", timeout_seconds: float = 600, poll_seconds: float = 5,
                   sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        """Waits until the service serves what was last applied (``serves_latest``).

        Raises:
            TimeoutError: Not in time; the message has what it waited for and KServe's conditions.
        """
        deadline = time.monotonic() + timeout_seconds
        while True:
            ready, waiting = self.serves_latest(name, deployment_mode, revision_before, traffic)
            if ready:
                return self.get(name) or {}
            if time.monotonic() >= deadline:
                status = (self.get(name) or {}).get("status") or {}
                reasons = "; ".join(f"{c.get('type')}={c.get('status')} {c.get('reason', '')} "
                                    f"{c.get('message', '')}".strip() for c in status.get("conditions") or []) \
                    or "no status yet"
                raise TimeoutError(f"InferenceService {self.namespace}/{name} was not Ready after "
                                   f"{timeout_seconds:.0f} s: {waiting} ({reasons})")
            sleep(poll_seconds)

    def promote(self, name: str) -> dict[str, Any]:
        """Sends all traffic to the latest revision (removes the canary split)."""
        return self._patch(name, {"spec": {"predictor": {"canaryTrafficPercent": None}}})

    def rollback(self, name: str) -> dict[str, Any]:
        """Sends all traffic back to the previous ready revision (canary share 0)."""
        return self._patch(name, {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
