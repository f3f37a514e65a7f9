"""Program of the deploy image: ``python -m components.deploy --executor-input JSON``."""

import json
import sys

from components.deploy.deploy import deploy, deploy_to_cluster
from components.kfp_io import ComponentError, Executor, run_component


def _read_json(path: str):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _run(executor: Executor) -> None:
    evaluation = _read_json(executor.input_path("evaluation"))
    blessing = _read_json(executor.input_path("blessing"))
    release = {
        "metrics": {k: v for k, v in evaluation["candidate"].items() if k != "slices"},
        "baseline_metrics": {k: v for k, v in (evaluation.get("baseline") or {}).items() if k != "slices"},
        "baseline_version": evaluation.get("baseline_version"),
        "test_spans": evaluation.get("test_spans"),
        "blessing": blessing,
        "model_metadata": executor.input_metadata("model"),
        "run_id": executor.param("run_id") or None,
    }
    infra_blessing = _read_json(executor.input_path("infra_blessing"))
    target = executor.param("serving_target")
    if target == "kserve":
        if not executor.param("serving_image"):
            raise ComponentError("serving_image is empty: compile the pipeline with the registry of the serve "
                                 "image (make compile IMAGE_REGISTRY=...)")
        canary = int(executor.param("canary_traffic_percent"))
        try:
            deployed, details = deploy_to_cluster(
                model_dir=executor.input_path("model"), blessing=blessing, infra_blessing=infra_blessing,
                model_store_uri=executor.param("registry_uri"), model_name=executor.param("model_name"),
                release=release, namespace=executor.param("namespace"),
                service_account=executor.param("service_account"), image=executor.param("serving_image"),
                canary_traffic_percent=canary if 0 < canary < 100 else None,
                logger_url=executor.param("payload_logger_url"),
                deployment_mode=executor.param("deployment_mode", "Standard"),
                kserve_version=executor.param("kserve_version", "0.15"),
                ready_timeout_seconds=float(executor.param("ready_timeout_seconds", 600)))
        except (ValueError, TimeoutError) as error:
            raise ComponentError(f"{error}; production was not changed") from None
    elif target == "local":
        deployed, details = deploy(
            model_dir=executor.input_path("model"),
            blessing=blessing,
            infra_blessing=infra_blessing,
            registry_uri=executor.param("registry_uri"),
            model_name=executor.param("model_name"),
            release=release,
            serving_state_dir=executor.param("serving_state_dir"),
            serving_port=int(executor.param("serving_port")),
            fork_server=True,  # this step's process: see control.start_process
            logger_url=executor.param("payload_logger_url"),
            feature_server_url=executor.param("feature_server_url", ""),
            experiment_percent=float(executor.param("canary_traffic_percent", 0) or 0),
        )
    else:
        raise ComponentError(f"serving_target must be 'local' or 'kserve', got {target!r}")
    with open(executor.output_path("deployment"), "w", encoding="utf-8") as handle:
        json.dump({"deployed": deployed, **details}, handle, indent=2)
    if not deployed:
        executor.set_metadata("deployment", {"deployed": False, "reasons": details["reasons"]})
        print(f"[deploy] NOT deployed: {'; '.join(details['reasons'])}", flush=True)
        return
    pointer = details["pointer"]
    where = (details["serving"]["predict_url"]
             + (f" (online experiment: {details['experiment_percent']:g}% of requests to {pointer['version']}, "
                "decided by the monitor)" if details.get("experiment") else "")
             if "serving" in details
             else f"InferenceService {details['inference_service']['namespace']}/{executor.param('model_name')}"
             + (f" (canary, {canary}% of traffic; make promote or make rollback)" if details.get("canary") else ""))
    executor.set_metadata("deployment", {"deployed": True, "version": pointer["version"],
                                         "model_name": executor.param("model_name"), "target": target,
                                         # resolve_baseline scopes production to this namespace
                                         "namespace": executor.param("namespace"),
                                         "model_dir": pointer["model_dir"], "serving_url": where,
                                         "canary": bool(details.get("canary") or details.get("experiment"))})
    print(f"[deploy] {pointer['version']} published to {pointer['model_dir']}", flush=True)
    print(f"[deploy] serving at {where}", flush=True)


if __name__ == "__main__":
    sys.exit(run_component("deploy", _run))
