"""KFP interface of deploy: blessed model in; registry version and serving switch out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import MODEL_MODULES, PodSettings

#: Its pod on a cluster: CPU and memory (request, limit), and the S3 endpoint and credentials.
POD = PodSettings(cpu=("100m", "500m"), memory=("512Mi", "1Gi"), s3=True,
                  # Locally, forked from its warm runtime, it forks the model server with these imported.
                  preload=("components.model_server.server", *MODEL_MODULES))


@dsl.container_component
def deploy(
    model: dsl.Input[dsl.Model],
    blessing: dsl.Input[dsl.Artifact],
    infra_blessing: dsl.Input[dsl.Artifact],
    evaluation: dsl.Input[dsl.Artifact],
    registry_uri: str,
    model_name: str,
    serving_state_dir: str,
    serving_port: int,
    serving_target: str,
    namespace: str,
    service_account: str,
    canary_traffic_percent: int,
    payload_logger_url: str,
    feature_server_url: str,
    run_id: str,
    serving_image: str,
    deployment_mode: str,
    kserve_version: str,
    ready_timeout_seconds: int,
    deployment: dsl.Output[dsl.Artifact],
):
    """Publishes the model as a new registry version and points serving at it.

    Locally the KServe model server follows the registry; on a cluster the model's
    InferenceService is created or patched (optionally as a canary).

    Refuses (and changes nothing) unless both blessings are positive.

    Args:
        model: The candidate model.
        blessing: validate_model's decision.
        infra_blessing: infra_validate's decision.
        evaluation: Metrics recorded with the release.
        registry_uri: Root of the model registry (a folder locally, ``s3://bucket/prefix`` for kserve).
        model_name: The model's name in the registry and in serving URLs.
        serving_state_dir: Folder where the local model server keeps its state and log.
        serving_port: Port of the local model server.
        serving_target: ``local`` (model server process) or ``kserve`` (InferenceService).
        namespace: Namespace of the InferenceService (kserve target).
        service_account: Service account holding the S3 Secret (kserve target).
        canary_traffic_percent: Traffic share of the new version, 1-99 for an online experiment (local)
            or a canary (kserve); 0 or 100 for all.
        payload_logger_url: Monitor receiving every request and response (KServe payload logger); "" for none.
        feature_server_url: Feast's feature server the local model server looks features up in
            (on a cluster the model server reads it from the ConfigMap ``ct-feature-store``).
        run_id: Identifier of this pipeline run, recorded with the release.
        serving_image: Predictor image of the InferenceService (kserve target), fixed at compile time.
        deployment_mode: KServe mode of the InferenceService: Knative (canaries possible) or Standard.
        kserve_version: The cluster's KServe (0.14, 0.15 or 0.16): which name its mode annotation takes.
        ready_timeout_seconds: How long the new version may take to become Ready before deploy fails.
        deployment: What was done: version, folder and serving URL, or the refusal's reasons.
    """
    return program_spec("serve", "deploy")
