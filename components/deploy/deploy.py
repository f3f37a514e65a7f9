"""Deployment logic: refuse what is not blessed, publish a version, then switch serving."""

from __future__ import annotations

from typing import Any, Optional

from components import registry
from components.model_server import control


def refusal_reasons(blessing: Optional[dict[str, Any]], infra_blessing: Optional[dict[str, Any]]) -> list[str]:
    """Why a model must not be deployed (empty when it may be)."""
    reasons = []
    if not blessing or not blessing.get("blessed"):
        reasons.append("model validation did not bless the model")
    if not infra_blessing or not infra_blessing.get("blessed"):
        reasons.append("infra validation did not pass")
    return reasons


def deploy(model_dir: str, blessing: Optional[dict[str, Any]], infra_blessing: Optional[dict[str, Any]],
           registry_uri: str, model_name: str, release: dict[str, Any], serving_state_dir: str,
           serving_port: int, logger_url: str = "") -> tuple[bool, dict[str, Any]]:
    """Publishes a blessed model to the registry, then serves it from the local model server.

    The running server follows the registry and swaps to the new version without
    dropping a request; a server is started when none runs.

    Nothing is touched when either blessing is missing or negative. With
    ``logger_url`` the server logs every request and response to that monitor.

    Returns:
        ``(deployed, details)``: details hold the reasons when refused, else the
        registry pointer and the server's state.
    """
    reasons = refusal_reasons(blessing, infra_blessing)
    if reasons:
        return False, {"reasons": reasons}
    pointer = registry.open_registry(registry_uri).publish(model_name, model_dir, release)
    if pointer.get("unchanged"):
        serving = control.read_state(serving_state_dir)
        if (control.is_alive(serving) and serving.get("version") == pointer["version"]
                and serving.get("logger_url", "") == logger_url):
            return False, {"reasons": [f"the model is identical to production {pointer['version']}, "
                                       "which is serving already"]}
    state = control.ensure_serving(serving_state_dir, registry_uri, model_name, serving_port,
                                   logger_url=logger_url)
    return True, {"pointer": pointer, "serving": state}


def deploy_to_cluster(model_dir: str, blessing: Optional[dict[str, Any]], infra_blessing: Optional[dict[str, Any]],
                      model_store_uri: str, model_name: str, release: dict[str, Any], namespace: str,
                      service_account: str, image: str, canary_traffic_percent: Optional[int] = None,
                      api=None, logger_url: str = "") -> tuple[bool, dict[str, Any]]:
    """Publishes a blessed model to S3, then points the model's InferenceService at it.

    Nothing is touched when either blessing is missing or negative.

    Args:
        model_dir: The candidate model folder.
        blessing: validate_model's decision.
        infra_blessing: infra_validate's decision.
        model_store_uri: ``s3://bucket/prefix`` of the model registry.
        model_name: Model and InferenceService name.
        release: What to record with the version.
        namespace: Namespace of the InferenceService.
        service_account: Service account with the S3 Secret (KServe's annotations).
        image: The serving runtime image.
        canary_traffic_percent: Share of traffic for the new version (None: all of it).
        api: A ``CustomObjectsApi``; default: the in-cluster configuration.
        logger_url: The monitor KServe's payload logger posts to ("" for none).

    Returns:
        ``(deployed, details)`` like ``deploy``.
    """
    from components.deploy.cluster import ClusterDeployer

    reasons = refusal_reasons(blessing, infra_blessing)
    if reasons:
        return False, {"reasons": reasons}
    if not model_store_uri.startswith("s3://"):
        raise ValueError(f"registry_uri must be s3://bucket/prefix for serving_target=kserve (KServe downloads "
                         f"the model from there), got {model_store_uri!r}")
    pointer = registry.open_registry(model_store_uri).publish(model_name, model_dir, release)
    if pointer.get("unchanged"):
        return False, {"reasons": [f"the model is identical to production {pointer['version']}"]}
    if api is None:
        from kubernetes import client, config

        config.load_incluster_config()
        api = client.CustomObjectsApi()
    service = ClusterDeployer(api, namespace).deploy(model_name, pointer["model_dir"], image, service_account,
                                                     canary_traffic_percent, logger_url)
    return True, {"pointer": pointer, "inference_service": {"name": model_name, "namespace": namespace,
                                                            "canary_traffic_percent": canary_traffic_percent,
                                                            "generation": service["metadata"].get("generation")}}
