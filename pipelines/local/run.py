"""``make run``: land the example's data if needed, run the CT pipeline locally, print a summary.

Usage: ``python -m pipelines.local.run [--spec SPEC] [--window FIRST:LAST] [KEY=VALUE ...]``. The
window's last span is the test span, the others are trained on; without ``--window``, the spec's
``source.window``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Optional

from components.dataset_spec import DatasetSpec, SpecError
from components.processes import pid_alive
from components.spans import is_span_id, split_window
from pipelines.ct.spec import PIPELINE_NAME, PIPELINE_YAML, git_sha, parse_params, pipeline_defaults
from pipelines.examples import DEFAULT_SPEC
from pipelines.local.runner import DEFAULT_VENVS, REPO_ROOT, run_pipeline_file, runtime_python
from pipelines.local.summary import collect, format_summary

#: The ports `make run` serves on when they are free.
DEFAULT_SERVING_PORT = 8080
DEFAULT_FEATURE_PORT = 6566


def ensure_source(source: str, spec: DatasetSpec, venvs_dir: str = DEFAULT_VENVS) -> None:
    """Lands the example's spans in the source folder (the spec's ``source.landing``) unless spans are there."""
    if os.path.isdir(source) and any(is_span_id(name, spec.granularity) for name in os.listdir(source)):
        return
    if not spec.landing:
        raise SystemExit(f"error: {source} holds no span of {spec.name}, and its spec names no landing "
                         "(source.landing): put the spans there, or pass source_uri=...")
    print(f"Landing the spans of {spec.name} in {source} ({spec.landing}) ...", flush=True)
    subprocess.run([runtime_python("data", venvs_dir), "-m", spec.landing, source],
                   check=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT})


def target_spec(target_name: str, spec_path: str, objects_path: str, run_dir: str):
    """(the pipeline compiled for a KFP backend, task -> why its pod would not start there).

    Raises:
        ValueError: An unsupported target, or cluster objects that do not parse.
    """
    import yaml

    from pipelines.ct import pods
    from pipelines.ct.compile import compile_to, pipelines

    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, f"ct_pipeline.{target_name}.yaml")
    compile_to(pipelines()[0][0], path, spec_path, target_name)
    objects, namespace = [], "default"
    if objects_path:
        with open(objects_path, encoding="utf-8") as handle:
            try:
                objects = [o for o in yaml.safe_load_all(handle) if o]
            except yaml.YAMLError as error:
                raise ValueError(f"--cluster-objects {objects_path}: {error}") from error
        namespace = next((o["metadata"].get("namespace") for o in objects if o["metadata"].get("namespace")),
                         namespace)
    with open(path, encoding="utf-8") as handle:
        refusals = pods.pod_refusals(handle.read(), target_name, pods.namespace_objects(objects, namespace),
                                     namespace)
    return path, refusals


def main(argv: Optional[list[str]] = None) -> int:
    """Runs the pipeline for a window and prints what happened."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.local.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=DEFAULT_SPEC,
                        help=f"the dataset spec (default {os.path.relpath(DEFAULT_SPEC, REPO_ROOT)})")
    parser.add_argument("--window", default="",
                        help="FIRST:LAST span: train on the spans before LAST, test on LAST (default: the spec's)")
    parser.add_argument("--var", default=os.path.join(REPO_ROOT, "var"),
                        help="folder for source data, runs, registry and serving state (default ./var)")
    parser.add_argument("--no-cache", action="store_true",
                        help="run every task even if an identical one ran before (the cache is keyed on the "
                             "data version, so new data always reruns)")
    parser.add_argument("--trigger", default="on_demand", help="why this run was started (recorded in lineage)")
    parser.add_argument("--containers", action="store_true",
                        help="run each task in its image through kfp.local's DockerRunner (needs a Docker API: "
                             "Docker, or `podman system service`; `make images` builds the images)")
    parser.add_argument("--contract", choices=["kfp-local", "kfp-backend"], default="kfp-local",
                        help="kfp-backend: tasks meet the KFP v2 backend's contract (metadata converted as MLMD "
                             "stores it, a null fails the task) and the backend's ML Metadata records are written "
                             "(a local stand-in for the cluster's backend); kfp-local (default): kfp.local as it is, "
                             "the run recorded into ML Metadata afterwards")
    parser.add_argument("--no-warm", action="store_true",
                        help="start every task as a fresh interpreter (default: fork it from a warm process of its "
                             "runtime that imported its libraries once, pipelines/local/warm.py)")
    parser.add_argument("--kfp-target", default="",
                        help="with --contract kfp-backend: run the spec compiled for this KFP backend "
                             "(pipelines/ct/targets.py) and start each task's pod as its driver would "
                             "(pipelines/ct/pods.py) in the namespace --cluster-objects describes")
    parser.add_argument("--cluster-objects", default="",
                        help="with --kfp-target: YAML of the ConfigMaps and Secrets where the pipeline's pods run "
                             "(e.g. a rendered overlay); default none, as on a namespace nothing was applied to")
    parser.add_argument("params", nargs="*", help="pipeline parameters as KEY=VALUE, e.g. max_iter=300")
    args = parser.parse_args(argv)
    if args.kfp_target and args.contract != "kfp-backend":
        parser.error("--kfp-target needs --contract kfp-backend")
    if args.cluster_objects and not args.kfp_target:
        parser.error("--cluster-objects needs --kfp-target")
    if args.kfp_target and args.containers:
        parser.error("--kfp-target runs the local runtimes (not --containers)")
    try:
        spec = DatasetSpec.load(args.spec)
        window = args.window or spec.window
        if not window:
            raise ValueError(f"{args.spec} names no source.window: give --window FIRST:LAST")
        train_spans, test_span = split_window(window, spec.granularity)
        overrides = parse_params(args.params)
    except (ValueError, SpecError) as error:
        parser.error(str(error))
    var = os.path.abspath(args.var)
    params = {
        "source_uri": os.path.join(var, "source", spec.name),
        "model_name": spec.model_name,
        "registry_uri": os.path.join(var, "registry"),
        # One serving folder per model: two examples (or checkouts) serve side by side.
        "serving_state_dir": os.path.join(var, "serving", spec.model_name),
        "feature_repo": os.path.join(var, "feature_store"),
        "metadata_uri": os.path.join(var, "runs", "metadata.sqlite"),
        "train_spans": train_spans,
        "test_span": test_span,
        "trigger": args.trigger,
        "git_sha": git_sha() or "",
        "dataset_spec": spec.to_json(),
        **overrides,
    }
    if not str(params["source_uri"]).startswith("s3://"):
        ensure_source(str(params["source_uri"]), spec)
    if "serving_port" not in overrides:
        params["serving_port"] = serving_port(str(params["serving_state_dir"]))
    if spec.feature_views and "feature_server_url" not in overrides:
        params["feature_server_url"] = feature_server_url(str(params["feature_repo"]))
    run_dir = os.path.join(var, "runs", datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f"))
    print(f"Running {os.path.relpath(PIPELINE_YAML)}: train on {train_spans}, test on {test_span}; "
          f"run folder {run_dir}", flush=True)
    started = time.time()
    info = {**run_info(args.trigger), "effective_parameters": {**pipeline_defaults(), **params}}
    backend = args.contract == "kfp-backend"
    pipeline_yaml, refusals = PIPELINE_YAML, None
    if args.kfp_target:
        try:
            pipeline_yaml, refusals = target_spec(args.kfp_target, args.spec, args.cluster_objects, run_dir)
        except (ValueError, OSError) as error:
            parser.error(str(error))
        info["kfp_target"] = args.kfp_target
    ok = run_pipeline_file(pipeline_yaml, params, run_dir, enable_caching=not args.no_cache,
                           cache_root=os.path.join(var, "cache"), run_info=info,
                           containers=[var] if args.containers else None,
                           backend_contract_store=str(params["metadata_uri"]) if backend else None,
                           pod_refusals=refusals, warm=not args.no_warm)
    pipeline_seconds = time.time() - started
    recorded = time.time()
    # Under the backend contract the backend stand-in wrote ML Metadata while the run went on.
    lineage_ok = True if backend else record_lineage(str(params["metadata_uri"]), run_dir)
    facts = collect(run_dir)
    print(format_summary(facts))
    print(f"Pipeline wall time: {pipeline_seconds:.1f} s; " + (
        f"ML Metadata written as the KFP backend writes it, to {params['metadata_uri']}" if backend else
        f"lineage recorded in {time.time() - recorded:.1f} s to {params['metadata_uri']}"
        + ("" if lineage_ok else " (FAILED, see above)")))
    serving = (facts.get("deployment") or {}).get("serving")
    state_file = os.path.join(str(params["serving_state_dir"]), "server.json")
    if serving is None and os.path.exists(state_file):
        with open(state_file, encoding="utf-8") as handle:
            serving = json.load(handle)
        print(f"Serving (unchanged): {serving['predict_url']}  version {serving['version']}")
    if serving:
        print(f"Try it: curl -s -H 'Content-Type: application/json' {serving['predict_url']} "
              f"-d @{os.path.relpath(spec.path(spec.serving['example_request']))}")
    with open(os.path.join(run_dir, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(facts, handle, indent=2, default=str)
    return 0 if ok and lineage_ok else 1


def serving_port(state_dir: str, default: int = DEFAULT_SERVING_PORT) -> int:
    """The local model server's port: the one it runs on, else the default, else (taken by another) a free one."""
    from components.model_server import control

    state = control.read_state(state_dir)
    if control.is_alive(state):
        return int(state["port"])
    if control.port_is_free(default):
        return default
    port = control.free_port()
    print(f"Port {default} is taken (another model or checkout serves there): this model serves on {port}",
          flush=True)
    return port


def feature_server_url(repo: str, default: int = DEFAULT_FEATURE_PORT) -> str:
    """The local feature server's URL: the repository's own when it runs, else the default port, else a free one."""
    from components.feature_store import server
    from components.model_server import control

    state = server.read_state(repo)
    if state.get("url") and pid_alive(state.get("pid", -1), state.get("started")):
        return state["url"]
    port = default if control.port_is_free(default) else control.free_port()
    if port != default:
        print(f"Port {default} is taken (another checkout's feature server?): this one answers on {port}", flush=True)
    return f"http://127.0.0.1:{port}"


def run_info(trigger: str) -> dict:
    """What the lineage records about a run besides its tasks: code and pipeline versions, trigger."""
    with open(PIPELINE_YAML, "rb") as handle:
        pipeline_version = hashlib.sha256(handle.read()).hexdigest()[:16]
    return {"pipeline_name": PIPELINE_NAME, "pipeline_version": pipeline_version, "git_sha": git_sha(),
            "trigger": trigger}


def record_lineage(metadata_uri: str, run_dir: str, venvs_dir: str = DEFAULT_VENVS) -> bool:
    """Records the run into ML Metadata with the data runtime (where ml-metadata lives)."""
    result = subprocess.run([runtime_python("data", venvs_dir), "-m", "components.lineage", "--store", metadata_uri,
                             "record", run_dir], cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT},
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(f"Recording lineage failed:\n{result.stdout}{result.stderr}", file=sys.stderr)
    return result.returncode == 0


if __name__ == "__main__":
    sys.exit(main())
