"""Lineage command line (data runtime): ``python -m components.lineage COMMAND``.

Commands:
  record RUN_DIR            record a local run folder into the store
  serving                   what produced the model in production now
  model URI                 what produced a given model artifact
  runs                      every run with its outcome
  steps RUN_ID              a run's steps with state and duration
  diff VERSION VERSION      metrics and parameters of two deployed versions
  graph RUN_ID -o FILE      a run's lineage graph as HTML
  baseline                  the latest blessed and deployed model (what resolve_baseline uses)
  experiments               online experiments decided: versions, outcome, reason, evidence
  record-experiments FILE   record the decisions of a monitor's experiments.jsonl (idempotent)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional

from components import registry
from components.lineage import experiments as lineage_experiments
from components.lineage import graph, queries, recorder
from components.lineage.store import connect

DEFAULT_STORE = "var/runs/metadata.sqlite"


def _print(value: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(value, indent=2, default=str))
        return
    if isinstance(value, list):
        for row in value:
            print("  ".join(f"{k}={v}" for k, v in row.items()))
        return
    for key, item in value.items():
        if isinstance(item, dict):
            print(f"{key}:")
            for sub_key, sub_item in item.items():
                print(f"    {sub_key}: {sub_item}")
        else:
            print(f"{key}: {item}")


def main(argv: Optional[list[str]] = None) -> int:
    """Parses the command line and answers."""
    parser = argparse.ArgumentParser(prog="python -m components.lineage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default=DEFAULT_STORE,
                        help=f"metadata store: SQLite path, mysql://..., grpc://host:port (default {DEFAULT_STORE})")
    parser.add_argument("--model-name", default=os.environ.get("MODEL_NAME", ""),
                        help="the model asked about: the spec's serving.model_name (default $MODEL_NAME)")
    parser.add_argument("--registry", default="var/registry",
                        help="registry whose current.json says which version serves (empty: ignore)")
    parser.add_argument("--namespace", default=None,
                        help="serving, baseline: only deployments into this namespace (a cluster's store holds "
                             "every profile's; default: all)")
    parser.add_argument("--pipeline", default=None,
                        help="serving, baseline: only deployments by runs of this pipeline (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("command", choices=["record", "serving", "model", "runs", "steps", "diff", "graph",
                                            "baseline", "experiments", "record-experiments"])
    parser.add_argument("args", nargs="*")
    parser.add_argument("-o", "--output", help="output file (graph)")
    args = parser.parse_args(argv)
    if not args.model_name and args.command in ("serving", "baseline", "model", "diff"):
        parser.error(f"{args.command} needs --model-name (the dataset spec's serving.model_name)")
    store = connect(args.store)
    try:
        if args.command == "record":
            for run_dir in args.args:
                counts = recorder.record_run(store, run_dir)
                print(f"recorded {recorder.run_id_of(run_dir)}: {counts['executions']} executions, "
                      f"{counts['artifacts']} output artifacts")
        elif args.command in ("serving", "baseline"):
            latest = queries.latest_deployed_model(store, args.model_name, args.namespace, args.pipeline)
            pointer = registry.current(args.registry, args.model_name) if args.registry else None
            if pointer and latest and pointer["version"] != latest["version"]:
                # Rolled back outside a run: production is the deployment of the registry's version.
                deployments = queries.deployments(store, args.model_name, args.namespace, args.pipeline)
                matching = [d for d in deployments if d["version"] == pointer["version"]]
                latest = matching[-1] if matching else latest
            if latest is None:
                print("no model has been deployed yet", file=sys.stderr)
                return 1
            _print(latest if args.command == "baseline" else
                   {"version": latest["version"], "model_dir": latest["model_dir"],
                    **queries.provenance(store, latest["model_uri"], deployed_by=latest["run_id"])}, args.json)
        elif args.command == "record-experiments":
            for path in args.args:
                with open(path, encoding="utf-8") as handle:
                    decisions = [json.loads(line) for line in handle if line.strip()]
                recorded = [lineage_experiments.record_experiment(store, d) for d in decisions]
                print(f"recorded {sum(1 for r in recorded if r is not None)} of {len(decisions)} experiment "
                      f"decisions from {path} (the others were recorded already)")
        elif args.command == "experiments":
            found = lineage_experiments.experiments(store, args.model_name or None)
            _print(found if args.json else [
                {key: e.get(key) for key in ("candidate_version", "production_version", "outcome", "looked_at",
                                             "likelihood_ratio", "reason")} for e in found], args.json)
        elif args.command == "model":
            _print(queries.provenance(store, args.args[0]), args.json)
        elif args.command == "runs":
            _print(queries.runs(store), args.json)
        elif args.command == "steps":
            _print(queries.steps(store, args.args[0]), args.json)
        elif args.command == "diff":
            _print(queries.diff(store, args.args[0], args.args[1], args.model_name), args.json)
        elif args.command == "graph":
            html = graph.to_html(graph.run_graph(store, args.args[0]))
            output = args.output or f"lineage-{args.args[0]}.html"
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(html)
            print(f"wrote {output}")
    except (LookupError, IndexError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
