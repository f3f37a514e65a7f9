"""``python -m components.monitor serve|ground-truth|close|status|experiment``: the monitor service and its client."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
from typing import Optional

from components.monitor.analysis import Thresholds
from components.monitor.control import request


def main(argv: Optional[list[str]] = None) -> int:
    """Command line of the monitor."""
    parser = argparse.ArgumentParser(prog="python -m components.monitor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the monitor service")
    serve.add_argument("--state", default=os.environ.get("MONITOR_STATE", "var/monitor"))
    serve.add_argument("--registry", default=os.environ.get("MONITOR_REGISTRY") or None,
                       help="model registry folder (training samples and blessed metrics)")
    serve.add_argument("--spec", default=os.environ.get("MONITOR_DATASET_SPEC", ""),
                       help="the dataset spec (spec.toml, or the JSON a cluster mounts; default "
                            "$MONITOR_DATASET_SPEC): the monitored model, its features, metric and thresholds")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    serve.add_argument("--drift-threshold", type=float, help="default: the spec's monitoring.drift_threshold")
    serve.add_argument("--skew-threshold", type=float, help="default: the spec's monitoring.skew_threshold")
    serve.add_argument("--max-metric-drop", type=float,
                       help="how much worse than blessed the primary metric may get (default: the spec's "
                            "monitoring.max_metric_drop, else 0.05)")
    serve.add_argument("--min-labeled-rows", type=int, default=Thresholds.min_labeled_rows)
    serve.add_argument("--beam-pipeline-args", default=os.environ.get("MONITOR_BEAM_PIPELINE_ARGS", ""),
                       help="window statistics on this Beam runner (e.g. '--runner=FlinkRunner ...'); "
                            "empty: in process")
    serve.add_argument("--feature-server-url", default=os.environ.get("FEATURE_SERVER_URL", ""),
                       help="Feast's feature server: the looked-up features of requests that left them out "
                            "are looked up there, as the model server did (default: $FEATURE_SERVER_URL)")
    serve.add_argument("--experiment", action="append", default=[], metavar="KEY=VALUE",
                       help="an online experiment's rule over the spec's [experiment] table (repeatable), "
                            "e.g. --experiment alpha=0.01 --experiment max_labelled_rows=20000")
    truth = commands.add_parser("ground-truth", help="upload a batch file of labels (CSV request_id,index,label "
                                                      "or JSON records)")
    truth.add_argument("file")
    truth.add_argument("--url", default="http://127.0.0.1:8090")
    close = commands.add_parser("close", help="close the open window and print its analysis")
    close.add_argument("label")
    close.add_argument("--url", default="http://127.0.0.1:8090")
    status = commands.add_parser("status", help="print the monitor's status")
    status.add_argument("--url", default="http://127.0.0.1:8090")
    experiment = commands.add_parser("experiment", help="print the online experiment's last look and decisions "
                                                        "(--look: look now, deciding if the evidence suffices)")
    experiment.add_argument("--url", default="http://127.0.0.1:8090")
    experiment.add_argument("--look", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "serve":
        if not args.spec:
            parser.error("serve needs --spec (the dataset spec) or $MONITOR_DATASET_SPEC")
        from components.beam_statistics import parse_beam_args
        from components.dataset_spec import DatasetSpec, SpecError
        from components.monitor.app import serve as run

        try:
            spec = DatasetSpec.load(args.spec)
        except SpecError as error:
            parser.error(str(error))
        from components.experiment.rules import ExperimentRules

        try:
            rules = ExperimentRules.from_settings(args.experiment, spec.experiment_rules())
        except ValueError as error:
            parser.error(str(error))
        thresholds = Thresholds.from_spec(spec, drift=args.drift_threshold, skew=args.skew_threshold,
                                          max_metric_drop=args.max_metric_drop,
                                          min_labeled_rows=args.min_labeled_rows)
        run(args.state, args.registry, spec, args.host, args.port, thresholds,
            beam_args=parse_beam_args(args.beam_pipeline_args), feature_server_url=args.feature_server_url or None,
            experiment_rules=rules)
        return 0
    if args.command == "ground-truth":
        try:
            with open(args.file, "rb") as handle:
                body = handle.read()
        except OSError as error:
            parser.error(f"cannot read {args.file}: {error.strerror}")
    try:
        if args.command == "ground-truth":
            kind = "text/csv" if args.file.endswith(".csv") else "application/json"
            code, answer = request("POST", f"{args.url}/v1/ground-truth", body, kind)
        elif args.command == "close":
            code, answer = request("POST", f"{args.url}/v1/windows/close?label={urllib.parse.quote(args.label)}",
                                   b"")
        elif args.command == "experiment":
            code, answer = request("POST" if args.look else "GET", f"{args.url}/v1/experiment",
                                   b"" if args.look else None)
        else:
            code, answer = request("GET", f"{args.url}/v1/status")
    except (urllib.error.URLError, OSError) as error:
        print(f"error: the monitor at {args.url} does not answer ({getattr(error, 'reason', error)}); "
              "start it with make monitor", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0 if code < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
