"""The local model server and its controls: ``python -m components.model_server COMMAND``.

Commands:
  serve     run a server in the foreground (--model-dir DIR or --registry URI)
  start     start the production server in the background, following the registry
  stop      stop it
  status    show what it serves
  rollback  point the registry back at the previous (or --version) model; the server follows
  compare   predict every row of --source's spans with the compiled path and Pipeline.predict_proba
            and say whether they agree bit for bit (exit 1 if not)
"""

import argparse
import json
import os
import sys

from components import registry
from components.body_limit import DEFAULT_MAX_BODY_BYTES
from components.model_server import control
from components.model_server.server import serve


def main() -> int:
    """Parses the command line and acts."""
    parser = argparse.ArgumentParser(prog="python -m components.model_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="serve",
                        choices=["serve", "start", "stop", "status", "rollback", "compare"])
    parser.add_argument("--model-dir", help="serve this model folder (fixed)")
    parser.add_argument("--registry", help="serve the current version of the model in this registry")
    parser.add_argument("--name", default=os.environ.get("MODEL_NAME", ""),
                        help="model name in the URLs and the registry: the spec's serving.model_name (default "
                             "$MODEL_NAME; for rollback, the running server's; for --model-dir, the folder's name)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    parser.add_argument("--state-dir", default="",
                        help="state folder of the background server (default var/serving/<name>, as make run)")
    parser.add_argument("--version", help="rollback target (default: the previous version)")
    parser.add_argument("--source", help="compare: a span source (one folder per span, as the spec declares)")
    parser.add_argument("--spec", help="compare: the dataset spec of the spans (spec.toml)")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default loopback; 0.0.0.0 for all interfaces, as in a pod)")
    parser.add_argument("--threads", type=int, default=1,
                        help="OpenMP/BLAS threads per prediction (default 1: small requests, busy neighbours)")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes sharing the port (default 1; one per core on multi-core hosts)")
    parser.add_argument("--reference-path", action="store_true",
                        help="predict with Pipeline.predict_proba on every request, not the compiled path")
    parser.add_argument("--schema", default="",
                        help="data validation schema whose domains requests must respect (default: the one in the "
                             "served model's folder, the schema it was trained under)")
    parser.add_argument("--logger-url", default="",
                        help="log every request and response to this monitor URL (KServe payload-logger events)")
    parser.add_argument("--feature-server-url", default=os.environ.get("FEATURE_SERVER_URL", ""),
                        help="Feast's feature server, where the features a request leaves out are looked up "
                             "(default: $FEATURE_SERVER_URL; empty: requests carry every feature)")
    parser.add_argument("--access-log", action="store_true",
                        help="log a line per request (uvicorn's access log; off by default: it costs throughput)")
    args, _ = parser.parse_known_args()
    if not args.state_dir:
        args.state_dir = os.path.join("var", "serving", args.name) if args.name else "var/serving"
    if not args.name and args.command == "rollback":
        args.name = (control.read_state(args.state_dir) or {}).get("model_name", "")
    if not args.name and args.model_dir:
        args.name = os.path.basename(os.path.normpath(args.model_dir))
    if not args.name and args.command in ("serve", "start", "rollback"):
        parser.error(f"{args.command} needs --name (the dataset spec's serving.model_name)")
    if args.command == "serve":
        if bool(args.model_dir) == bool(args.registry):
            parser.error("serve needs exactly one of --model-dir and --registry")
        serve(args.name, args.port, model_dir=args.model_dir, registry_uri=args.registry, host=args.host,
              schema_path=args.schema or None, threads=args.threads, workers=args.workers,
              compiled=not args.reference_path,
              max_body_bytes=args.max_body_bytes, logger_url=args.logger_url or None,
              feature_server_url=args.feature_server_url or None, access_log=args.access_log)
    elif args.command == "compare":
        if not args.model_dir or not args.source or not args.spec:
            parser.error("compare needs --model-dir, --source and --spec")
        return _compare(args.model_dir, args.source, args.spec)
    elif args.command == "start":
        print(json.dumps(control.ensure_serving(args.state_dir, args.registry or "var/registry", args.name,
                                                args.port, logger_url=args.logger_url,
                                                feature_server_url=args.feature_server_url), indent=2))
    elif args.command == "stop":
        print(json.dumps(control.stop(args.state_dir) or {"stopped": "nothing was running"}, indent=2))
    elif args.command == "status":
        print(json.dumps(control.status(args.state_dir), indent=2))
    elif args.command == "rollback":
        pointer = registry.rollback(args.registry or "var/registry", args.name, args.version)
        state = control.read_state(args.state_dir)
        if control.is_alive(state):
            control.wait_version(state["url"], args.name, pointer["version"], timeout=60)
            control.write_state(args.state_dir, {**state, "version": pointer["version"],
                                                 "model_dir": pointer["model_dir"]})
        print(f"{args.name}: production is now {pointer['version']} (was {pointer['previous_version']})")
    return 0


def _compare(model_dir: str, source: str, spec_path: str) -> int:
    from threadpoolctl import threadpool_limits

    from components.dataset_spec import DatasetSpec, SpecError
    from components.model_server.model import compare_on_source

    threadpool_limits(1)
    try:
        result = compare_on_source(model_dir, source, DatasetSpec.load(spec_path))
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 1 if result["differing_rows"] else 0


if __name__ == "__main__":
    sys.exit(main())
