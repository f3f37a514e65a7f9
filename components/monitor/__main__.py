"""``python -m components.monitor serve|ground-truth|close|status``: the monitor service and its client."""

from __future__ import annotations

import argparse
import json
import os
import sys
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
    serve.add_argument("--model-name", default=os.environ.get("MONITOR_MODEL_NAME", ""),
                       help="the monitored model: the spec's serving.model_name (default $MONITOR_MODEL_NAME)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    serve.add_argument("--drift-threshold", type=float, default=Thresholds.drift)
    serve.add_argument("--skew-threshold", type=float, default=Thresholds.skew)
    serve.add_argument("--auc-drop-threshold", type=float, default=Thresholds.auc_drop)
    serve.add_argument("--min-labeled-rows", type=int, default=Thresholds.min_labeled_rows)
    serve.add_argument("--beam-pipeline-args", default=os.environ.get("MONITOR_BEAM_PIPELINE_ARGS", ""),
                       help="window statistics on this Beam runner (e.g. '--runner=FlinkRunner ...'); "
                            "empty: in process")
    serve.add_argument("--feature-server-url", default=os.environ.get("FEATURE_SERVER_URL", ""),
                       help="Feast's feature server: the weather of requests that left it out is looked up "
                            "there, as the model server did (default: $FEATURE_SERVER_URL)")
    truth = commands.add_parser("ground-truth", help="upload a batch file of labels (CSV request_id,index,label "
                                                      "or JSON records)")
    truth.add_argument("file")
    truth.add_argument("--url", default="http://127.0.0.1:8090")
    close = commands.add_parser("close", help="close the open window and print its analysis")
    close.add_argument("label")
    close.add_argument("--url", default="http://127.0.0.1:8090")
    status = commands.add_parser("status", help="print the monitor's status")
    status.add_argument("--url", default="http://127.0.0.1:8090")
    args = parser.parse_args(argv)
    if args.command == "serve":
        if not args.model_name:
            parser.error("serve needs --model-name (the dataset spec's serving.model_name) or $MONITOR_MODEL_NAME")
        from components.beam_statistics import parse_beam_args
        from components.monitor.app import serve as run

        run(args.state, args.registry, args.model_name, args.host, args.port,
            Thresholds(args.drift_threshold, args.skew_threshold, args.auc_drop_threshold, args.min_labeled_rows),
            beam_args=parse_beam_args(args.beam_pipeline_args), feature_server_url=args.feature_server_url or None)
        return 0
    if args.command == "ground-truth":
        with open(args.file, "rb") as handle:
            body = handle.read()
        kind = "text/csv" if args.file.endswith(".csv") else "application/json"
        code, answer = request("POST", f"{args.url}/v1/ground-truth", body, kind)
    elif args.command == "close":
        code, answer = request("POST", f"{args.url}/v1/windows/close?label={urllib.parse.quote(args.label)}", b"")
    else:
        code, answer = request("GET", f"{args.url}/v1/status")
    print(json.dumps(answer, indent=2))
    return 0 if code < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
