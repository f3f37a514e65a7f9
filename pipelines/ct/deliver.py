"""Pipeline delivery (CD) to a Kubeflow Pipelines server: upload the compiled YAML, schedule it.

``python -m pipelines.ct.deliver deploy-pipeline`` uploads ``ct_pipeline.yaml`` as a new
version named with the git sha; ``schedule`` creates or replaces the recurring run
(cron, at most one run at a time, no catch-up, the pipeline-runner service account; its runs
carry ``trigger=schedule`` and the version's git sha as parameters, so both land in ML
Metadata). Host, namespace and token come from ``KFP_HOST``, ``KFP_NAMESPACE`` and
``KFP_TOKEN`` (or the flags); ``--dry-run`` prints what would be sent and contacts nothing.

The namespace is passed on every namespaced call: ``kfp.Client(namespace=...)`` cannot
carry one (its default, ``kubeflow``, means "none given"). On the multi-user Kubeflow
platform it is the profile namespace; on standalone Kubeflow Pipelines leave it empty.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional

from pipelines.ct.spec import PIPELINE_NAME, PIPELINE_YAML, git_sha, parse_params


def _versions(client, pipeline_id: str) -> dict[str, str]:
    names, token = {}, ""
    while True:
        page = client.list_pipeline_versions(pipeline_id, page_token=token, page_size=100)
        for version in page.pipeline_versions or []:
            names[version.display_name] = version.pipeline_version_id
        token = page.next_page_token
        if not token:
            return names


def backend_release(client) -> str:
    """The KFP backend's release, as its healthz endpoint reports it (``tag_name``; "unknown" when unset).

    The generated client keeps only ``multi_user`` of the answer; the API server writes ``commit_sha``
    and ``tag_name`` too (backend/src/apiserver/main.go, 2.5.0 to 2.17.0; the image sets TAG_NAME).
    """
    answer = client._healthz_api.healthz_service_get_healthz(_preload_content=False)
    return str(json.loads(answer.data or b"{}").get("tag_name") or "unknown")


def check_package_fits_backend(client, pipeline_yaml: str) -> dict[str, Any]:
    """Refuses a package whose platform config the server's backend would not parse strictly.

    KFP 2.5's compiler then drops the pod labels our NetworkPolicies select on (in silence), 2.15's
    and later refuse the run: upload what ``make compile OVERLAY=...`` / ``make release`` compiled
    for that backend.

    Returns:
        {"backend": its release, "target": the matching target or None when the release is unknown}.

    Raises:
        ValueError: The backend is not a supported target, or the package does not fit it.
    """
    from pipelines.ct.targets import TARGETS, check, target_of_backend

    release = backend_release(client)
    if release == "unknown":
        return {"backend": release, "target": None}
    chosen = target_of_backend(release)
    if chosen is None:
        raise ValueError(f"the KFP backend at the host is {release}, not a supported one: "
                         + ", ".join(f"{t.kfp_backend} ({t.name})" for t in TARGETS.values()))
    with open(pipeline_yaml, encoding="utf-8") as handle:
        refused = check(handle.read(), chosen)
    if refused:
        executor, error = next(iter(sorted(refused.items())))
        raise ValueError(f"{os.path.relpath(pipeline_yaml)} does not fit KFP {release} ({chosen}): {executor}: "
                         f"{error}; compile it for that backend: make release ... OVERLAY=<your overlay> "
                         f"(or make compile OVERLAY=<your overlay> KFP_TARGET={chosen})")
    return {"backend": release, "target": chosen}


def deploy_pipeline(client, version_name: str, pipeline_yaml: str = PIPELINE_YAML, name: str = PIPELINE_NAME,
                    dry_run: bool = False) -> dict[str, Any]:
    """Uploads the compiled pipeline as version ``version_name`` (creating the pipeline if needed).

    Idempotent: a version of that name that exists already is kept as it is. A package the
    server's backend would not parse strictly is refused first (``check_package_fits_backend``).
    """
    plan: dict[str, Any] = {"action": "upload_pipeline_version", "pipeline": name, "version": version_name,
                            "package": os.path.relpath(pipeline_yaml)}
    if dry_run:
        return {**plan, "dry_run": True}
    plan["backend"] = check_package_fits_backend(client, pipeline_yaml)
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(pipeline_yaml, pipeline_name=name).pipeline_id
        plan["created_pipeline"] = True
    existing = _versions(client, pipeline_id)
    if version_name in existing:
        return {**plan, "pipeline_id": pipeline_id, "version_id": existing[version_name], "unchanged": True}
    version = client.upload_pipeline_version(pipeline_yaml, pipeline_version_name=version_name,
                                             pipeline_id=pipeline_id)
    return {**plan, "pipeline_id": pipeline_id, "version_id": version.pipeline_version_id}


def schedule(client, version_name: str, cron: str, experiment: str, job_name: str,
             params: Optional[dict[str, Any]] = None, name: str = PIPELINE_NAME,
             dry_run: bool = False, namespace: Optional[str] = None,
             service_account: Optional[str] = None) -> dict[str, Any]:
    """Creates the recurring run of a pipeline version, replacing one of the same name on another version.

    Recurring runs cannot be edited in place in KFP v2, so a changed one is deleted and created again.
    Its runs get ``trigger=schedule`` and ``git_sha=<version>`` unless ``params`` set them.
    """
    params = {"trigger": "schedule", "git_sha": version_name, **(params or {})}
    plan: dict[str, Any] = {"action": "create_recurring_run", "job_name": job_name, "experiment": experiment,
                            "pipeline": name, "version": version_name, "cron_expression": cron,
                            "max_concurrency": 1, "no_catchup": True, "params": params,
                            "namespace": namespace or None, "service_account": service_account or None}
    if dry_run:
        return {**plan, "dry_run": True}
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        raise LookupError(f"pipeline {name!r} is not on the server: run deploy-pipeline first")
    version_id = _versions(client, pipeline_id).get(version_name)
    if version_id is None:
        raise LookupError(f"pipeline {name!r} has no version {version_name!r}: run deploy-pipeline first")
    try:
        experiment_id = client.get_experiment(experiment_name=experiment, namespace=namespace or None).experiment_id
    except ValueError:
        experiment_id = client.create_experiment(experiment, namespace=namespace or None).experiment_id
    runs = client.list_recurring_runs(experiment_id=experiment_id, page_size=100).recurring_runs or []
    for run in runs:
        if run.display_name != job_name:
            continue
        if (run.pipeline_version_reference.pipeline_version_id == version_id
                and run.trigger.cron_schedule.cron == cron
                and (run.runtime_config.parameters if run.runtime_config else {}) == params
                and (run.service_account or None) == (service_account or None)):
            return {**plan, "recurring_run_id": run.recurring_run_id, "unchanged": True}
        client.delete_recurring_run(run.recurring_run_id)
        plan["replaced"] = run.recurring_run_id
    created = client.create_recurring_run(experiment_id=experiment_id, job_name=job_name, cron_expression=cron,
                                          max_concurrency=1, no_catchup=True, params=params,
                                          pipeline_id=pipeline_id, version_id=version_id,
                                          service_account=service_account or None)
    return {**plan, "recurring_run_id": created.recurring_run_id}


def connect(host: Optional[str]):
    """A ``kfp.Client`` for the configured server (token from ``KFP_TOKEN``, never from the repo).

    No namespace is given to the client: callers pass it on each namespaced call.
    """
    from kfp import Client

    if not host:
        raise ValueError("no KFP host: set KFP_HOST or pass --host")
    return Client(host=host, existing_token=os.environ.get("KFP_TOKEN") or None)


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: deploy-pipeline or schedule."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.ct.deliver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["deploy-pipeline", "schedule"])
    parser.add_argument("--host", default=os.environ.get("KFP_HOST"))
    parser.add_argument("--namespace", default=os.environ.get("KFP_NAMESPACE", ""),
                        help="profile namespace on the multi-user Kubeflow platform; empty for standalone KFP")
    parser.add_argument("--service-account", default=os.environ.get("KFP_SERVICE_ACCOUNT", ""),
                        help="service account of the scheduled runs' pods (default: the server's pipeline-runner)")
    parser.add_argument("--version", help="pipeline version name (default: the git sha)")
    parser.add_argument("--cron", default="0 0 6 * * *", help="KFP cron, with seconds (default daily 06:00)")
    parser.add_argument("--experiment", default="continuous-training")
    parser.add_argument("--job-name", default=f"{PIPELINE_NAME}-schedule")
    parser.add_argument("--param", action="append", default=[], help="pipeline parameter KEY=VALUE")
    parser.add_argument("--dry-run", action="store_true", help="print what would be sent; contact nothing")
    parser.add_argument("--package", default=PIPELINE_YAML,
                        help="deploy-pipeline: the compiled YAML to upload (make release writes var/release/"
                             "ct_pipeline.yaml with the registry's images; default the committed one)")
    args = parser.parse_args(argv)

    version = args.version or git_sha()
    if not version:
        parser.error("no --version and no git sha")
    try:
        params = parse_params(args.param)
        client = None if args.dry_run else connect(args.host)
        if args.command == "deploy-pipeline":
            result = deploy_pipeline(client, version, pipeline_yaml=args.package, dry_run=args.dry_run)
        else:
            result = schedule(client, version, args.cron, args.experiment, args.job_name, params,
                              dry_run=args.dry_run, namespace=args.namespace,
                              service_account=args.service_account)
    except (ValueError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - the API's refusals, named without a traceback
        from kfp_server_api import ApiException

        if not isinstance(error, ApiException):
            raise
        print(f"error: the KFP API at {args.host} answered {error.status} {error.reason}: "
              f"{(error.body or '').strip()}", file=sys.stderr)
        return 1
    print(json.dumps({**result, "host": args.host, "namespace": args.namespace or None}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
