"""Promote or roll back the model on a cluster: ``python -m components.deploy.release <command>``.

``promote`` and ``rollback`` are the operator's side of a canary (``make promote`` / ``make
rollback TARGET=kserve``); ``apply-decisions`` applies what the monitor decided for an online
experiment (``--watch``: the releaser Deployment, manifests/base/releaser.yaml, polling the
registry; ``health`` is its probe). The InferenceService changes first, the registry's
pointers move once KServe reports it Ready. The Kubernetes API is reached with the caller's
kubeconfig (or the pod's service account token inside the cluster); S3 settings come from
``S3_ENDPOINT`` and the AWS variables or ``S3_CREDENTIALS_DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from typing import Optional

from components.deploy.cluster import DEFAULT_KSERVE_VERSION, KSERVE_MODE_NAMES, MODES
from components.deploy.deploy import promote_on_cluster, release_decided_experiment, rollback_on_cluster


def apply_decisions(registry_uri: str, model_name: str, namespace: str, watch: bool = False,
                    poll_seconds: float = 15, heartbeat: str = "", api=None, sleep=time.sleep,
                    polls: Optional[int] = None, ready_poll_seconds: float = 5) -> int:
    """Applies each experiment decision the monitor records; with ``watch``, polls the registry for ever.

    A failed poll (the registry or the API server unreachable, KServe not Ready in time) is
    printed and retried at the next one; the decision stays in the registry until applied.
    ``heartbeat`` is touched after every poll (``health`` reads its age); ``polls`` bounds the loop (tests);
    ``ready_poll_seconds``: between reads of KServe's status while it rolls out.

    Returns:
        0 when the last poll succeeded, else 1.
    """
    status, done = 0, 0
    while True:
        try:
            applied = release_decided_experiment(registry_uri, model_name, namespace, api, ready_poll_seconds)
            if applied is not None:
                print(f"[releaser] {json.dumps(applied)}", flush=True)
            status = 0
        except Exception as error:  # noqa: BLE001 - a long-running loop reports and retries every failure
            print(f"[releaser] applying {model_name}'s experiment decision failed, retried in {poll_seconds:.0f} s: "
                  f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)
            if not isinstance(error, (ValueError, TimeoutError)):  # an unforeseen one: where it came from
                traceback.print_exc(limit=3, file=sys.stderr)
            status = 1
        if heartbeat:
            with open(heartbeat, "w", encoding="utf-8") as handle:
                handle.write(f"{time.time():.0f} {status}\n")
        done += 1
        if not watch or (polls is not None and done >= polls):
            return status
        sleep(poll_seconds)


def health(heartbeat: str, max_age_seconds: float) -> int:
    """0 when the releaser polled within ``max_age_seconds``, else 1 with the reason (its probe)."""
    try:
        age = time.time() - os.path.getmtime(heartbeat)
    except OSError:
        print(f"unhealthy: no poll yet ({heartbeat} missing)", file=sys.stderr)
        return 1
    if age > max_age_seconds:
        print(f"unhealthy: last poll {age:.0f} s ago (more than {max_age_seconds:.0f} s)", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """Parses the command line, promotes or rolls back, prints the registry pointer now in production."""
    parser = argparse.ArgumentParser(prog="python -m components.deploy.release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["promote", "rollback", "apply-decisions", "health"])
    parser.add_argument("--registry", help="s3://bucket/prefix of the model registry")
    parser.add_argument("--namespace", help="namespace of the InferenceService")
    parser.add_argument("--name", help="model and InferenceService name (the spec's serving.model_name)")
    parser.add_argument("--spec", help="instead of --name: the dataset spec (spec.toml, or its JSON on a cluster)")
    parser.add_argument("--version", help="rollback: the version to serve (default: the previous one)")
    parser.add_argument("--image", default="", help="rollback of a version: the serving image")
    parser.add_argument("--service-account", default="ct-serving")
    parser.add_argument("--deployment-mode", default="Standard", choices=MODES)
    parser.add_argument("--kserve-version", default=DEFAULT_KSERVE_VERSION, choices=list(KSERVE_MODE_NAMES),
                        help="the cluster's KServe (the deployment mode's name in the annotation)")
    parser.add_argument("--logger-url", default="", help="payload logger to keep on the service")
    parser.add_argument("--timeout", type=float, default=600, help="seconds KServe may take to be Ready")
    parser.add_argument("--watch", action="store_true", help="apply-decisions: poll the registry for ever")
    parser.add_argument("--poll-seconds", type=float, default=15, help="apply-decisions --watch: between polls")
    parser.add_argument("--heartbeat", default="", help="apply-decisions: a file touched after every poll")
    parser.add_argument("--max-age", type=float, default=900, help="health: seconds since the last poll")
    args = parser.parse_args(argv)
    if args.command == "health":
        if not args.heartbeat:
            parser.error("health needs --heartbeat")
        return health(args.heartbeat, args.max_age)
    if args.spec and not args.name:
        from components.dataset_spec import DatasetSpec, SpecError

        try:
            args.name = DatasetSpec.load(args.spec).model_name
        except SpecError as error:
            parser.error(str(error))
    missing = [flag for flag, value in (("--registry", args.registry), ("--namespace", args.namespace),
                                        ("--name or --spec", args.name)) if not value]
    if missing:
        parser.error(f"{args.command} needs {', '.join(missing)}")
    if args.command == "apply-decisions":
        print(f"[releaser] applying {args.name}'s online experiment decisions from {args.registry} in namespace "
              f"{args.namespace}" + (f", polling every {args.poll_seconds:.0f} s" if args.watch else ""), flush=True)
        return apply_decisions(args.registry, args.name, args.namespace, args.watch, args.poll_seconds,
                               args.heartbeat)
    try:
        if args.command == "promote":
            pointer = promote_on_cluster(args.registry, args.name, args.namespace, None, args.timeout)
        else:
            pointer = rollback_on_cluster(args.registry, args.name, args.namespace, args.image, args.service_account,
                                          args.version, None, args.logger_url, args.deployment_mode, args.timeout,
                                          kserve_version=args.kserve_version)
    except (ValueError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"production": pointer["version"], "model_dir": pointer["model_dir"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
