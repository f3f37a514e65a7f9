"""The continuous-training pipeline: wiring only, in the order of Google's MLOps level 1.

fingerprint -> extract -> join_features (Feast, point-in-time) -> validate_data -> prepare -> train
-> evaluate (against resolve_baseline) -> validate_model -> [if blessed] infra_validate -> deploy;
materialize (the feature views into the online store) once the data is validated, before any deployment.
"""

import importlib

from kfp import dsl, kubernetes

from components.deploy.component import deploy
from components.evaluate.component import evaluate
from components.extract.component import extract
from components.fingerprint.component import fingerprint
from components.images import PodSettings, image
from components.infra_validate.component import infra_validate
from components.join_features.component import join_features
from components.materialize.component import materialize
from components.prepare.component import prepare
from components.resolve_baseline.component import resolve_baseline
from components.train.component import train
from components.validate_data.component import validate_data
from components.validate_model.component import validate_model
from pipelines.ct.spec import PIPELINE_NAME

#: Secret with the S3 credentials (manifests/base/s3-secret.yaml), for the tasks that reach S3.
S3_SECRET = "ct-s3-credentials"
#: ConfigMap with the S3 endpoint (manifests/base/s3-config.yaml): ``S3_ENDPOINT``, whose
#: ``https://`` or ``http://`` scheme chooses TLS (components/s3_settings.py reads it).
S3_CONFIG = "ct-s3-config"
#: The cluster's Feast repository and settings (manifests/base/feature-store.yaml), mounted where
#: the feature steps find it with ``feature_repo=FEATURE_REPO_MOUNT``, and its Redis password.
FEATURE_STORE_CONFIG = "ct-feature-store"
FEATURE_STORE_SECRET = "ct-feature-store-credentials"
FEATURE_REPO_MOUNT = "/etc/kfp-ct/feature-store"


def pod_settings(task: dsl.PipelineTask) -> PodSettings:
    """The ``POD`` that the step's own ``component.py`` declares (found through the program the task runs)."""
    program = task.component_spec.implementation.container.command[-1]  # components.<step>
    return importlib.import_module(f"{program}.component").POD


def _harden(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Cluster settings of a step: non-root identity, resources, S3 endpoint and credentials where needed.

    The KFP compiler adds allowPrivilegeEscalation=false, dropped capabilities and the
    RuntimeDefault seccomp profile itself.
    """
    kubernetes.set_security_context(task, run_as_user=10001, run_as_group=10001, run_as_non_root=True)
    # Every task's launcher moves its artifacts to and from the object store: the label admits
    # the pod there (manifests/components/store-*/s3-egress.yaml). part-of: the pod is ours, inside
    # the NetworkPolicies' fence (manifests/base/networkpolicy.yaml).
    kubernetes.add_pod_label(task, "kfp-ct/s3-client", "true")
    kubernetes.add_pod_label(task, "app.kubernetes.io/part-of", "kfp-ct")
    pod = pod_settings(task)
    task.set_cpu_request(pod.cpu[0]).set_cpu_limit(pod.cpu[1])
    task.set_memory_request(pod.memory[0]).set_memory_limit(pod.memory[1])
    if pod.s3:
        kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, optional=True, secret_key_to_env={
            "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"})
        kubernetes.use_config_map_as_env(task, config_map_name=S3_CONFIG, optional=True,
                                         config_map_key_to_env={"S3_ENDPOINT": "S3_ENDPOINT"})
    if pod.feature_store:
        # Admits the pod to Redis (manifests/base/networkpolicy.yaml allow-redis-ingress).
        kubernetes.add_pod_label(task, "kfp-ct/online-store-client", "true")
        kubernetes.use_config_map_as_volume(task, config_map_name=FEATURE_STORE_CONFIG,
                                            mount_path=FEATURE_REPO_MOUNT, optional=True)
        kubernetes.use_config_map_as_env(task, config_map_name=FEATURE_STORE_CONFIG, optional=True,
                                         config_map_key_to_env={"FEATURE_OFFLINE_URI": "FEATURE_OFFLINE_URI",
                                                                "FEATURE_REGISTRY_URI": "FEATURE_REGISTRY_URI"})
        kubernetes.use_secret_as_env(task, secret_name=FEATURE_STORE_SECRET, optional=True,
                                     secret_key_to_env={"REDIS_PASSWORD": "REDIS_PASSWORD"})
    return task


@dsl.pipeline(name="release", description="Infra validation and deployment of a blessed model.")
def release(
    blessed: bool,
    model: dsl.Input[dsl.Model],
    blessing: dsl.Input[dsl.Artifact],
    evaluation: dsl.Input[dsl.Artifact],
    serving_samples: dsl.Input[dsl.Artifact],
    infra_max_p99_ms: float,
    infra_requests: int,
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
    deployment_mode: str,
    kserve_version: str,
    ready_timeout_seconds: int,
):
    """Runs infra validation, then deployment, only for a blessed model.

    A sub-pipeline, so that the condition tests one of its own inputs: kfp.local
    2.17 cannot resolve a condition on another task's output parameter.
    """
    with dsl.If(blessed == True, name="blessed"):  # noqa: E712 - KFP condition, not Python
        served = _harden(infra_validate(model=model, serving_samples=serving_samples,
                                        max_p99_ms=infra_max_p99_ms, requests=infra_requests))
        deployed = deploy(model=model, blessing=blessing, infra_blessing=served.outputs["infra_blessing"],
                          evaluation=evaluation, registry_uri=registry_uri, model_name=model_name,
                          serving_state_dir=serving_state_dir, serving_port=serving_port,
                          serving_target=serving_target, namespace=namespace, service_account=service_account,
                          canary_traffic_percent=canary_traffic_percent, payload_logger_url=payload_logger_url,
                          feature_server_url=feature_server_url, deployment_mode=deployment_mode,
                          kserve_version=kserve_version, ready_timeout_seconds=ready_timeout_seconds,
                          run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                          # Resolved here, at compile time, with the compiler's IMAGE_REGISTRY.
                          serving_image=image("serve"))
        _harden(deployed).set_caching_options(False)


@dsl.pipeline(name=PIPELINE_NAME, description="Continuous training of a tabular model declared by a dataset spec.")
def ct_pipeline(
    dataset_spec: str = "",
    source_uri: str = "",
    feature_repo: str = "var/feature_store",
    feature_server_url: str = "http://127.0.0.1:6566",
    train_spans: str = "2013-01:2013-03",
    test_span: str = "2013-04",
    eval_fraction: float = 0.2,
    schema_uri: str = "",
    drift_js_threshold: float = 0.1,
    drift_linf_threshold: float = 0.1,
    min_rows_fraction: str = "",
    max_rows_fraction: str = "",
    max_label_rate_change: str = "",
    max_missing_rate_change: str = "",
    beam_pipeline_args: str = "",
    learning_rate: float = 0.1,
    max_iter: int = 100,
    max_leaf_nodes: int = 15,
    l2_regularization: float = 0.0,
    metric_threshold: str = "",
    metric_max_change: str = "",
    infra_max_p99_ms: float = 100.0,
    infra_requests: int = 100,
    model_name: str = "",
    registry_uri: str = "var/registry",
    metadata_uri: str = "var/runs/metadata.sqlite",
    serving_state_dir: str = "var/serving",
    serving_port: int = 8080,
    serving_target: str = "local",
    namespace: str = "kfp-ct",
    service_account: str = "ct-serving",
    canary_traffic_percent: int = 0,
    payload_logger_url: str = "",
    deployment_mode: str = "Standard",
    kserve_version: str = "0.15",
    ready_timeout_seconds: int = 600,
    trigger: str = "on_demand",
    git_sha: str = "",
):
    """Trains, validates and deploys the dataset spec's model on a window of spans.

    Args:
        dataset_spec: The dataset spec as its canonical JSON (``DatasetSpec.to_json``): label, features,
            split, model, metric. Compiled in from ``make compile SPEC=...`` (the default example).
        source_uri: Local folder or ``s3://bucket/prefix`` with one folder per span (one file per feed).
        feature_repo: The Feast repository: a folder with ``feature_store.yaml`` (written with the
            embedded default, SQLite online store and local files, when it has none; on a cluster
            the ConfigMap ``ct-feature-store`` mounted, e.g. ``/etc/kfp-ct/feature-store``).
        feature_server_url: Feast's feature server, where serving looks up the views' features (locally
            started by materialize; on a cluster the model server reads it from ``ct-feature-store``).
        train_spans: Training spans (``2013-01:2013-03`` or a comma list).
        test_span: The span after them, held out as test set.
        eval_fraction: Share of training rows kept for eval.
        schema_uri: Schema to validate against; empty for the spec's curated schema (inferred when none).
        drift_js_threshold: Jensen-Shannon threshold for numeric drift.
        drift_linf_threshold: L-infinity threshold for categorical drift.
        min_rows_fraction: A span with fewer rows than this times the previous span's stops the run
            ("": the spec's ``checks.span``, else 0.5).
        max_rows_fraction: A span with more rows than this times the previous span's stops the run ("": the
            spec's, else 2.0).
        max_label_rate_change: Largest change of the positive label's share against the previous span ("": the
            spec's, else 0.25).
        max_missing_rate_change: Largest change of a feature's missing share against the previous span ("": the
            spec's, else 0.25).
        beam_pipeline_args: Empty: data statistics in process. Otherwise Beam pipeline arguments
            (e.g. ``--runner=FlinkRunner --flink_master=...``): validate_data computes its
            statistics as a Beam pipeline on that runner.
        learning_rate: Overrides the spec's hyperparameter when its ``model.pipeline_parameters`` lists it.
        max_iter: Likewise.
        max_leaf_nodes: Likewise.
        l2_regularization: Likewise.
        metric_threshold: Value threshold on the spec's primary metric ("": the spec's ``metric.threshold``).
        metric_max_change: Change threshold: how much worse than production on the same test span the
            candidate may be ("": the spec's ``metric.max_change``).
        infra_max_p99_ms: Bound on the served model's p99 latency.
        infra_requests: Single-row requests timed in infra validation.
        model_name: Model name in the registry and serving URLs (compiled in from the spec's serving.model_name).
        registry_uri: Root of the model registry.
        metadata_uri: ML Metadata store where the production model is looked up (SQLite path,
            ``mysql://...``, or ``grpc://metadata-grpc-service.kubeflow:8080`` on a cluster).
        serving_state_dir: State folder of the local model server.
        serving_port: Port of the local model server.
        serving_target: ``local`` (a KServe model server process) or ``kserve`` (an InferenceService;
            then ``registry_uri`` is ``s3://bucket/prefix``).
        namespace: Namespace of the InferenceService; the baseline is the production model of this namespace.
        service_account: Service account with the S3 Secret KServe reads.
        canary_traffic_percent: Traffic share for a new version (1-99): an online experiment against
            production, decided by the monitor on live ground truth (local target), or KServe's canary
            (kserve target, Knative mode only). 0 or 100: the new version takes all traffic.
        payload_logger_url: The monitor that receives every served request and response as
            KServe payload-logger CloudEvents (empty: no logging).
        deployment_mode: KServe mode of the InferenceService: Standard (one Deployment) or Knative.
        kserve_version: The cluster's KServe: 0.14 and 0.15 name the modes RawDeployment / Serverless,
            0.16 Standard / Knative (the annotation is written with the version's names).
        ready_timeout_seconds: How long a new version may take to become Ready on the cluster.
        trigger: Why the run was started (schedule, new_data, drift, ...); kept with the run in MLMD.
        git_sha: Commit the pipeline was compiled from; kept with the run in MLMD.
    """
    version = fingerprint(source_uri=source_uri, train_spans=train_spans, test_span=test_span,
                          dataset_spec=dataset_spec, registry_uri=registry_uri, model_name=model_name)
    version.set_caching_options(False)
    extracted = extract(source_uri=source_uri, train_spans=train_spans, test_span=test_span, dataset_spec=dataset_spec,
                        data_version=version.outputs["data_version"])
    joined = join_features(dataset=extracted.outputs["dataset"], dataset_spec=dataset_spec, source_uri=source_uri,
                           feature_repo=feature_repo)
    validated = validate_data(dataset=joined.outputs["joined"], dataset_spec=dataset_spec, schema_uri=schema_uri,
                              drift_js_threshold=drift_js_threshold, drift_linf_threshold=drift_linf_threshold,
                              min_rows_fraction=min_rows_fraction, max_rows_fraction=max_rows_fraction,
                              max_label_rate_change=max_label_rate_change,
                              max_missing_rate_change=max_missing_rate_change,
                              beam_pipeline_args=beam_pipeline_args)
    # Only validated data reaches the online store; serving never gets features a failed run refused.
    materialized = materialize(dataset_spec=dataset_spec, source_uri=source_uri, feature_repo=feature_repo,
                               serving_target=serving_target,
                               feature_server_url=feature_server_url).after(validated)
    # It reads the feed's current state, whatever the window: never cached (a no-op when nothing is new).
    materialized.set_caching_options(False)
    prepared = prepare(dataset=joined.outputs["joined"], dataset_spec=dataset_spec, test_span=test_span,
                       eval_fraction=eval_fraction).after(validated)
    trained = train(train_data=prepared.outputs["train_data"], eval_data=prepared.outputs["eval_data"],
                    dataset_spec=dataset_spec,
                    learning_rate=learning_rate, max_iter=max_iter, max_leaf_nodes=max_leaf_nodes,
                    l2_regularization=l2_regularization)
    baseline = resolve_baseline(metadata_uri=metadata_uri, registry_uri=registry_uri, model_name=model_name,
                                production_version=version.outputs["production_version"], namespace=namespace,
                                pipeline_name=PIPELINE_NAME)
    evaluated = evaluate(model=trained.outputs["model"], baseline=baseline.outputs["baseline"],
                         test_data=prepared.outputs["test_data"], dataset_spec=dataset_spec)
    judged = validate_model(evaluation=evaluated.outputs["evaluation"], dataset_spec=dataset_spec,
                            metric_threshold=metric_threshold, metric_max_change=metric_max_change)
    release(blessed=judged.outputs["blessed"], model=trained.outputs["model"],
            blessing=judged.outputs["blessing"], evaluation=evaluated.outputs["evaluation"],
            serving_samples=trained.outputs["serving_samples"], infra_max_p99_ms=infra_max_p99_ms,
            infra_requests=infra_requests, registry_uri=registry_uri, model_name=model_name,
            serving_state_dir=serving_state_dir, serving_port=serving_port, serving_target=serving_target,
            namespace=namespace, service_account=service_account, canary_traffic_percent=canary_traffic_percent,
            payload_logger_url=payload_logger_url, feature_server_url=feature_server_url,
            deployment_mode=deployment_mode, kserve_version=kserve_version,
            ready_timeout_seconds=ready_timeout_seconds).after(materialized)
    for task in (version, extracted, joined, validated, materialized, prepared, trained, baseline, evaluated, judged):
        _harden(task)
