"""Deployment on a cluster: a KServe ``InferenceService`` per model, with canary, promote and rollback.

The predictor runs our serving image (the KServe model server with input
validation); KServe's storage initializer downloads ``storageUri`` (the
versioned model folder in S3) to ``/mnt/models``, with credentials from the
service account's S3 Secret (KServe's ``serving.kserve.io/s3-*`` annotations).
Objects are built with the kserve SDK models, so they are checked against the
InferenceService schema before they are sent.
"""

from __future__ import annotations

from typing import Any, Optional

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


def inference_service(name: str, namespace: str, storage_uri: str, image: str, service_account: str,
                      canary_traffic_percent: Optional[int] = None, logger_url: str = "") -> dict[str, Any]:
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
                 "--name", name, "--port", "8080"],
        env=[client.V1EnvVar(name="STORAGE_URI", value=storage_uri)],
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
                                     labels={"app.kubernetes.io/part-of": "kfp-ct"}),
        spec=V1beta1InferenceServiceSpec(predictor=V1beta1PredictorSpec(
            # The storage initializer in this pod downloads the model: the label admits it to the
            # object store (manifests/components/store-*/s3-egress.yaml).
            labels={"kfp-ct/s3-client": "true"},
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

    def __init__(self, api, namespace: str):
        """Args: api: a ``kubernetes.client.CustomObjectsApi``; namespace: where the services live."""
        self.api = api
        self.namespace = namespace

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
        return self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, patch)

    def deploy(self, name: str, storage_uri: str, image: str, service_account: str,
               canary_traffic_percent: Optional[int] = None, logger_url: str = "") -> dict[str, Any]:
        """Creates the service, or moves it to a new model version (optionally as a canary).

        On an existing service with a canary share, KServe routes that share to the
        new revision and the rest to the last ready one.
        """
        desired = inference_service(name, self.namespace, storage_uri, image, service_account,
                                    canary_traffic_percent, logger_url)
        if self.get(name) is None:
            desired["spec"]["predictor"].pop("canaryTrafficPercent", None)  # nothing to split with yet
            return self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, desired)
        patch = {"spec": {"predictor": {**desired["spec"]["predictor"],
                                        "canaryTrafficPercent": canary_traffic_percent}}}
        return self._patch(name, patch)

    def promote(self, name: str) -> dict[str, Any]:
        """Sends all traffic to the latest revision (removes the canary split)."""
        return self._patch(name, {"spec": {"predictor": {"canaryTrafficPercent": None}}})

    def rollback(self, name: str) -> dict[str, Any]:
        """Sends all traffic back to the previous ready revision (canary share 0)."""
        return self._patch(name, {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
