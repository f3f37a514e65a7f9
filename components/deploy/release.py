"""Promote or roll back the model on a cluster: ``python -m components.deploy.release promote|rollback``.

The operator's side of a canary (``make promote`` / ``make rollback TARGET=kserve``): the
InferenceService changes first, the registry's pointers move once KServe reports it Ready.
The Kubernetes API is reached with the caller's kubeconfig (or the pod's service account
inside the cluster); S3 settings come from ``S3_ENDPOINT`` and the AWS variables.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

from components.deploy.cluster import DEFAULT_KSERVE_VERSION, KSERVE_MODE_NAMES, MODES
from components.deploy.deploy import promote_on_cluster, rollback_on_cluster


def _api():
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def main(argv: Optional[list[str]] = None) -> int:
    """Parses the command line, promotes or rolls back, prints the registry pointer now in production."""
    parser = argparse.ArgumentParser(prog="python -m components.deploy.release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["promote", "rollback"])
    parser.add_argument("--registry", required=True, help="s3://bucket/prefix of the model registry")
    parser.add_argument("--namespace", required=True, help="namespace of the InferenceService")
    parser.add_argument("--name", required=True, help="model and InferenceService name (the spec's serving.model_name)")
    parser.add_argument("--version", help="rollback: the version to serve (default: the previous one)")
    parser.add_argument("--image", default="", help="rollback of a version: the serving image")
    parser.add_argument("--service-account", default="ct-serving")
    parser.add_argument("--deployment-mode", default="Standard", choices=MODES)
    parser.add_argument("--kserve-version", default=DEFAULT_KSERVE_VERSION, choices=list(KSERVE_MODE_NAMES),
                        help="the cluster's KServe (the deployment mode's name in the annotation)")
    parser.add_argument("--logger-url", default="", help="payload logger to keep on the service")
    parser.add_argument("--timeout", type=float, default=600, help="seconds KServe may take to be Ready")
    args = parser.parse_args(argv)
    try:
        if args.command == "promote":
            pointer = promote_on_cluster(args.registry, args.name, args.namespace, _api(), args.timeout)
        else:
            pointer = rollback_on_cluster(args.registry, args.name, args.namespace, args.image, args.service_account,
                                          args.version, _api(), args.logger_url, args.deployment_mode, args.timeout,
                                          kserve_version=args.kserve_version)
    except (ValueError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"production": pointer["version"], "model_dir": pointer["model_dir"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
