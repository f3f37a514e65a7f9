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
           serving_port: int, logger_url: str = "", feature_server_url: str = "",
           fork_server: bool = False, experiment_percent: float = 0) -> tuple[bool, dict[str, Any]]:
    """Publishes a blessed model to the registry, then serves it from the local model server.

    The running server follows the registry and swaps to the new version without
    dropping a request; a server is started when none runs.

    With ``experiment_percent`` between 0 and 100 and a production version to compare with, the
    model becomes the candidate of an online experiment instead: the server answers that share
    of the requests with it, and the monitor decides from their ground truth whether it is
    promoted or rolled back (``components/monitor/experiment.py``). Production is not touched.
    A candidate is refused while another one's experiment runs: that one decides first.

    Nothing is touched when either blessing is missing or negative. With
    ``logger_url`` the server logs every request and response to that monitor; with
    ``feature_server_url`` it looks up there the features requests leave out; with
    ``fork_server`` a server started here is forked from this process (``control.start_process``).

    Returns:
        ``(deployed, details)``: details hold the reasons when refused, else the
        registry pointer, the server's state and whether an experiment started.
    """
    reasons = refusal_reasons(blessing, infra_blessing)
    if reasons:
        return False, {"reasons": reasons}
    store = registry.open_registry(registry_uri)
    running = store.canary(model_name)
    if running is not None and running.get("experiment"):
        return False, {"reasons": [f"{running['version']} is in an online experiment against production "
                                   f"{running['experiment'].get('production_version')}: it decides first"]}
    experiment = 0 < experiment_percent < 100 and store.current(model_name) is not None
    pointer = store.publish(model_name, model_dir, release, point=not experiment)
    if pointer.get("unchanged"):
        serving = control.read_state(serving_state_dir)
        if (control.is_alive(serving) and serving.get("version") == pointer["version"]
                and serving.get("logger_url", "") == logger_url
                and serving.get("feature_server_url", "") == feature_server_url):
            return False, {"reasons": [f"the model is identical to production {pointer['version']}, "
                                       "which is serving already"]}
        experiment = False  # the model is production already: nothing to compare
    if experiment:
        store.start_experiment(model_name, pointer, experiment_percent)
    state = control.ensure_serving(serving_state_dir, registry_uri, model_name, serving_port,
                                   logger_url=logger_url, feature_server_url=feature_server_url, fork=fork_server)
    if experiment:
        control.wait_version(state["url"], model_name, pointer["version"], probe="candidate")
    return True, {"pointer": pointer, "serving": state, "experiment": experiment,
                  "experiment_percent": experiment_percent if experiment else None}


def cluster_api(api=None):
    """``api``, else a ``CustomObjectsApi`` with the pod's service account token, else the caller's kubeconfig."""
    if api is not None:
        return api
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def deploy_to_cluster(model_dir: str, blessing: Optional[dict[str, Any]], infra_blessing: Optional[dict[str, Any]],
                      model_store_uri: str, model_name: str, release: dict[str, Any], namespace: str,
                      service_account: str, image: str, canary_traffic_percent: Optional[int] = None,
                      api=None, logger_url: str = "", deployment_mode: str = "Standard",
                      ready_timeout_seconds: float = 600, poll_seconds: float = 5,
                      kserve_version: str = "0.15") -> tuple[bool, dict[str, Any]]:
    """Publishes a blessed model to S3, points the model's InferenceService at it, and waits for it.

    Nothing is touched when either blessing is missing or negative, or when a canary is asked
    for in a mode that cannot split traffic. The registry's production pointer moves only
    once KServe reports the new generation Ready; a canary is recorded as the canary
    (``canary.json``), production staying the previous version until ``promote``.

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
        logger_url: The monitor KServe's payload logger posts to ("" for none, removing one set before).
        deployment_mode: KServe's mode (``cluster.MODES``); canaries need Knative.
        ready_timeout_seconds: How long KServe may take to make the new version Ready.
        poll_seconds: Interval between readiness checks.
        kserve_version: The cluster's KServe: the mode's name in the annotation (``cluster.annotation_mode``).

    Returns:
        ``(deployed, details)`` like ``deploy``.

    Raises:
        ValueError: A canary in a mode without traffic splitting, or a registry that is not on S3.
        TimeoutError: The new version did not become Ready (production is left as it was).
    """
    from components.deploy.cluster import ClusterDeployer, annotation_mode, check_canary

    reasons = refusal_reasons(blessing, infra_blessing)
    if reasons:
        return False, {"reasons": reasons}
    check_canary(deployment_mode, canary_traffic_percent)
    annotation_mode(deployment_mode, kserve_version)  # an unsupported KServe is refused before anything is published
    if not model_store_uri.startswith("s3://"):
        raise ValueError(f"registry_uri must be s3://bucket/prefix for serving_target=kserve (KServe downloads "
                         f"the model from there), got {model_store_uri!r}")
    store = registry.open_registry(model_store_uri)
    running = store.canary(model_name)
    if running is not None:
        return False, {"reasons": [f"{running['version']} is a canary (an online experiment) already: it is "
                                   "decided first (the monitor, or make promote / make rollback)"]}
    pointer = store.publish(model_name, model_dir, release, point=False)
    if pointer.get("unchanged"):
        return False, {"reasons": [f"the model is identical to production {pointer['version']}"]}
    deployer = ClusterDeployer(cluster_api(api), namespace, kserve_version)
    before = deployer.predictor_status(model_name).get("latestCreatedRevision")
    service = deployer.deploy(model_name, pointer["model_dir"], image, service_account, canary_traffic_percent,
                              logger_url, deployment_mode)
    generation = service["metadata"].get("generation") or 1
    # The first version of a service takes all traffic: there is nothing to split with.
    canary = 0 < (canary_traffic_percent or 0) < 100 and pointer["previous_version"] is not None
    served = deployer.wait_ready(model_name, deployment_mode, before, "canary" if canary else "latest",
                                 ready_timeout_seconds, poll_seconds)
    if canary:
        # An online experiment the monitor decides (components/monitor/experiment.py), KServe first.
        store.start_experiment(model_name, pointer, canary_traffic_percent, target="kserve", namespace=namespace,
                               deployment_mode=deployment_mode, kserve_version=kserve_version,
                               service_account=service_account, image=image)
    else:
        store.point(model_name, pointer, "deploy")
    return True, {"pointer": pointer, "canary": canary,
                  "inference_service": {"name": model_name, "namespace": namespace, "generation": generation,
                                        "revision": (((served.get("status") or {}).get("components") or {})
                                                     .get("predictor") or {}).get("latestReadyRevision"),
                                        "canary_traffic_percent": canary_traffic_percent if canary else None,
                                        "deployment_mode": deployment_mode}}


def promote_on_cluster(model_store_uri: str, model_name: str, namespace: str, api=None,
                       ready_timeout_seconds: float = 600, poll_seconds: float = 5) -> dict[str, Any]:
    """Sends all traffic to the canary, waits for Ready, then makes it production in the registry.

    Raises:
        ValueError: There is no canary.
    """
    from components.deploy.cluster import ClusterDeployer

    store = registry.open_registry(model_store_uri)
    canary = store.canary(model_name)
    if canary is None:
        raise ValueError(f"{model_name} has no canary to promote in {model_store_uri}")
    return _promote_canary(store, ClusterDeployer(cluster_api(api), namespace), model_name, ready_timeout_seconds,
                           poll_seconds, "promote")


def _promote_canary(store, deployer, model_name: str, ready_timeout_seconds: float, poll_seconds: float, event: str,
                    **details: Any) -> dict[str, Any]:
    """All traffic to the canary revision, Ready, then the canary is production in the registry."""
    deployer.promote(model_name)  # canaries exist in Knative mode only: all traffic to the latest revision
    deployer.wait_ready(model_name, "Knative", None, "latest", ready_timeout_seconds, poll_seconds)
    return store.promote(model_name, event, **details)


def _cancel_canary(store, deployer, model_name: str, ready_timeout_seconds: float, poll_seconds: float,
                   event: str) -> dict[str, Any]:
    """No traffic to the canary revision, Ready, then the registry's canary is cleared; production as it was."""
    deployer.rollback(model_name)  # Knative mode: canary share 0
    deployer.wait_ready(model_name, "Knative", None, "previous", ready_timeout_seconds, poll_seconds)
    store.set_canary(model_name, None, event)
    return store.current(model_name)


def release_decided_experiment(registry_uri: str, model_name: str, namespace: str, api=None,
                               poll_seconds: float = 5, ready_timeout_seconds: float = 600) -> Optional[dict[str, Any]]:
    """Applies the decision the monitor recorded for a cluster experiment, when one waits.

    The monitor holds no Kubernetes rights: its judge writes ``experiment.decision`` into the
    registry's canary (``RegistryStore.decide_experiment``) and this, run by the releaser, moves
    KServe's traffic (only ``canaryTrafficPercent``: nothing of the record reaches the
    InferenceService's spec), then the registry.

    Returns:
        None when nothing waits, else the candidate, the outcome and the version now in production.

    Raises:
        ValueError: The experiment's InferenceService is in another namespace, or the outcome is unknown.
    """
    from components.deploy.cluster import DEFAULT_KSERVE_VERSION, ClusterDeployer

    store = registry.open_registry(registry_uri)
    canary = store.canary(model_name) or {}
    experiment = canary.get("experiment") or {}
    decision = experiment.get("decision")
    if not decision or experiment.get("target") != "kserve":
        return None
    if experiment.get("namespace") != namespace:
        raise ValueError(f"{model_name} {canary['version']}'s experiment runs in namespace "
                         f"{experiment.get('namespace')!r}, this releaser acts in {namespace!r}")
    if decision.get("outcome") not in ("promote", "roll_back"):
        raise ValueError(f"{model_name} {canary['version']}: unknown decision {decision.get('outcome')!r}")
    deployer = ClusterDeployer(cluster_api(api), namespace, experiment.get("kserve_version", DEFAULT_KSERVE_VERSION))
    if decision["outcome"] == "promote":
        pointer = _promote_canary(store, deployer, model_name, ready_timeout_seconds, poll_seconds,
                                  "experiment_promote", experiment=decision)
    else:
        pointer = _cancel_canary(store, deployer, model_name, ready_timeout_seconds, poll_seconds,
                                 "experiment_rolled_back")
    return {"model_name": model_name, "candidate_version": canary["version"], "outcome": decision["outcome"],
            "production": pointer["version"]}


def rollback_on_cluster(model_store_uri: str, model_name: str, namespace: str, image: str, service_account: str,
                        version: Optional[str] = None, api=None, logger_url: str = "",
                        deployment_mode: str = "Standard", ready_timeout_seconds: float = 600,
                        poll_seconds: float = 5, kserve_version: str = "0.15") -> dict[str, Any]:
    """Undoes a canary (all traffic back to production), or serves an earlier version again.

    The registry moves only once KServe reports the service Ready.

    Returns:
        The registry pointer now in production.
    """
    from components.deploy.cluster import ClusterDeployer

    store = registry.open_registry(model_store_uri)
    deployer = ClusterDeployer(cluster_api(api), namespace, kserve_version)
    if store.canary(model_name) is not None and version is None:
        return _cancel_canary(store, deployer, model_name, ready_timeout_seconds, poll_seconds, "canary_rolled_back")
    target = registry.rollback_target(model_name, store.current(model_name), version, store.versions(model_name),
                                      model_store_uri)
    before = deployer.predictor_status(model_name).get("latestCreatedRevision")
    deployer.deploy(model_name, store.uri(model_name, "versions", target), image, service_account, None,
                    logger_url, deployment_mode)
    deployer.wait_ready(model_name, deployment_mode, before, "latest", ready_timeout_seconds, poll_seconds)
    store.set_canary(model_name, None, "canary_rolled_back")
    return store.rollback(model_name, target)
