"""The local CT loop: watch the triggers and run the pipeline when one fires.

Usage::

    python -m pipelines.loop trigger [--reason TEXT]      # on demand: one run now (or coalesced)
    python -m pipelines.loop watch [--interval 60] ...    # the scheduler process: check, run, repeat
    python -m pipelines.loop journal                      # what fired, what ran, what came out

State (pending triggers, run lock, journal, what was seen) lives in
``<var>/loop``. Runs go through ``pipelines.local.run`` like ``make run``, each with
its triggers recorded as the run's reason in ML Metadata.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, Optional

from components.paths import REPO_ROOT
from components.spans import window_for
from pipelines.loop.coordinator import RunCoordinator, StartError
from pipelines.loop.triggers import (
    KINDS,
    Trigger,
    TriggerPolicy,
    check_new_data,
    check_schedule,
    check_window,
    trigger_label,
)


def source_spans(source_uri: str, spec) -> list[str]:
    """Span ids in a source (local folder or S3 prefix): folders holding the spec's main feed file."""
    from components.sources import open_source

    return open_source(source_uri).spans(spec.feeds[spec.main_feed].file, spec.granularity)


class LocalLauncher:
    """Starts ``pipelines.local.run`` for a batch of triggers and reads its summary."""

    def __init__(self, var: str, source_uri: str, train_months: int = 3, params: Optional[list[str]] = None,
                 python: str = sys.executable, log_dir: Optional[str] = None, *, spec_path: str,
                 trigger_params: Optional[dict[str, list[str]]] = None):
        """Creates a launcher.

        Args:
            var: The runs' var folder (runs, registry, serving state).
            source_uri: Where spans land.
            train_months: Training spans per run (the newest span is the test span).
            params: Pipeline parameters as KEY=VALUE.
            python: Interpreter of the dev runtime.
            log_dir: Folder of the runs' logs (default ``<var>/loop/logs``).
            spec_path: The dataset spec the runs use.
            trigger_params: More parameters for a run one of whose triggers is of a kind (``on_demand``: ...).
        """
        from components.dataset_spec import DatasetSpec

        self.spec_path = spec_path
        self.spec = DatasetSpec.load(spec_path)
        self.var = var
        self.source_uri = source_uri
        self.train_months = train_months
        self.params = params or []
        self.trigger_params = trigger_params or {}
        self.python = python
        self.log_dir = log_dir or os.path.join(var, "loop", "logs")

    def spans(self) -> list[str]:
        """Span ids in the source (local folder or S3 prefix)."""
        return source_spans(self.source_uri, self.spec)

    def __call__(self, batch: list[Trigger]) -> dict[str, Any]:
        """Runs the pipeline once; raises ``StartError`` when it could not start."""
        window = window_for(self.spans(), self.train_months)
        if window is None:
            return {"skipped": "fewer than two spans in the source: nothing to train and test on"}
        os.makedirs(self.log_dir, exist_ok=True)
        before = set(glob.glob(os.path.join(self.var, "runs", "2*")))
        log_path = os.path.join(self.log_dir, datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f") + ".log")
        command = [self.python, "-m", "pipelines.local.run", "--var", self.var, "--window", window,
                   "--spec", self.spec_path,
                   "--trigger", trigger_label(batch), f"source_uri={self.source_uri}", *self.params,
                   *[param for kind in sorted({t.kind for t in batch}) for param in self.trigger_params.get(kind, [])]]
        with open(log_path, "w", encoding="utf-8") as log:
            try:
                code = subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                      env={**os.environ, "PYTHONPATH": REPO_ROOT}, check=False).returncode
            except OSError as error:
                raise StartError(f"could not start {command[0]}: {error}") from error
        runs = sorted(set(glob.glob(os.path.join(self.var, "runs", "2*"))) - before)
        if not runs:
            raise StartError(f"pipelines.local.run exited with {code} before creating a run (log: {log_path})")
        return summarize_run(runs[-1], window, code, log_path)


def summarize_run(run_dir: str, window: str, code: int, log_path: str) -> dict[str, Any]:
    """The facts of a finished run that the loop and the demo report use."""
    summary_path = os.path.join(run_dir, "summary.json")
    facts: dict[str, Any] = {}
    if os.path.exists(summary_path):
        with open(summary_path, encoding="utf-8") as handle:
            facts = json.load(handle)
    deployment = facts.get("deployment") or {}
    pointer = deployment.get("pointer") or {}
    return {"run_dir": run_dir, "window": window, "test_span": window.split(":")[1], "exit_code": code,
            "log": log_path, "succeeded": code == 0,
            "candidate_auc": (facts.get("candidate") or {}).get("auc"),
            "baseline_auc": (facts.get("baseline") or {}).get("auc"),
            "baseline_version": facts.get("baseline_version"),
            "blessed": (facts.get("blessing") or {}).get("blessed"),
            "blessing_reasons": (facts.get("blessing") or {}).get("reasons"),
            "schema_anomalies": sum(len(v) for v in (facts.get("schema_anomalies") or {}).values()),
            "deployed": bool(deployment.get("deployed")), "deployed_version": pointer.get("version"),
            "experiment": bool(deployment.get("experiment"))}


class Watcher:
    """Checks every trigger once per tick and keeps what it has seen (in ``<state_dir>/watch.json``)."""

    def __init__(self, state_dir: str, policy: TriggerPolicy, spans: Callable[[], list[str]],
                 monitor_status: Optional[Callable[[], Optional[dict]]] = None,
                 close_window: Optional[Callable[[str], None]] = None, close_cron: str = "",
                 on_experiment: Optional[Callable[[dict[str, Any]], None]] = None):
        """Creates a watcher.

        Args:
            state_dir: The loop folder.
            policy: Which triggers are on and their thresholds.
            spans: Lists the source's spans.
            monitor_status: Returns the monitor's ``/v1/status`` (None: no monitor-driven triggers).
            close_window: Closes the monitor's open window under a label (None: windows are closed by others).
            close_cron: When to close it (KFP's 6-field cron; empty: never), so that windows close on a
                schedule on a cluster and their skew, drift and AUC are judged.
            on_experiment: Called once with each online experiment's decision the monitor reports
                (the loop journals it).
        """
        self.path = os.path.join(state_dir, "watch.json")
        self.policy = policy
        self.spans = spans
        self.monitor_status = monitor_status
        self.close_window = close_window
        self.close_cron = close_cron
        self.on_experiment = on_experiment
        self.state = {"last_check": None, "tested_through": None, "seen_windows": [], "deployed_any": False,
                      "last_close": None, "seen_experiments": []}
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as handle:
                self.state.update(json.load(handle))

    def save(self) -> None:
        """Writes what was seen."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(self.state, handle, indent=2)
        os.replace(self.path + ".tmp", self.path)

    def tick(self, now: datetime.datetime) -> list[Trigger]:
        """The triggers that fire at ``now`` (each monitor window is looked at once)."""
        last = self.state["last_check"]
        fired = [check_schedule(self.policy.schedule_cron,
                                datetime.datetime.fromisoformat(last) if last else None, now),
                 # Until a model is in production, every new span is worth a try.
                 check_new_data(self.spans(), self.state["tested_through"],
                                self.policy.new_data_min_spans if self.state["deployed_any"] else
                                min(1, self.policy.new_data_min_spans), now)]
        if self.close_window and self.close_cron:
            last_close = self.state.get("last_close")
            # The first check starts the clock (no catch-up); then each due time closes the window once.
            if last_close is None or check_schedule(self.close_cron, datetime.datetime.fromisoformat(last_close),
                                                    now):
                if last_close is not None:
                    self.close_window(now.strftime("%Y%m%dT%H%M%S"))
                self.state["last_close"] = now.isoformat(timespec="seconds")
        status = self.monitor_status() if self.monitor_status else None
        for window in (status or {}).get("windows", []):
            if window["window"] not in self.state["seen_windows"]:
                self.state["seen_windows"].append(window["window"])
                fired.extend(check_window(window, self.policy, now))
        for decision in (status or {}).get("experiment_decisions", []):
            seen = f"{decision['candidate_version']}@{decision['started_at']}"
            if seen not in self.state["seen_experiments"]:
                self.state["seen_experiments"].append(seen)
                if self.on_experiment is not None:
                    self.on_experiment(decision)
        self.state["last_check"] = now.isoformat(timespec="seconds")
        self.save()
        return [trigger for trigger in fired if trigger]

    def ran(self, outcome: dict[str, Any]) -> None:
        """Remembers the span a run tested on (new data is data newer than that) and whether it deployed."""
        self.state["deployed_any"] = self.state["deployed_any"] or bool(outcome.get("deployed"))
        if outcome.get("test_span"):
            self.state["tested_through"] = max(self.state["tested_through"] or "", outcome["test_span"])
            self.save()


def experiment_recorder(coordinator: RunCoordinator, metadata_uri: str,
                        log: Callable[[str], None] = print) -> Callable[[dict[str, Any]], None]:
    """What the loop does with an online experiment's decision: the journal, then ML Metadata.

    ML Metadata is written by the data runtime's lineage CLI (``record-experiments``, idempotent),
    the runtime where ml-metadata lives, as ``make run`` records its runs.
    """
    import tempfile

    from pipelines.local.runner import runtime_python

    def record(decision: dict[str, Any]) -> None:
        coordinator.journal("experiment_decided", **decision)
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as handle:
            handle.write(json.dumps(decision) + "\n")
        try:
            result = subprocess.run([runtime_python("data"), "-m", "components.lineage", "--store", metadata_uri,
                                     "record-experiments", handle.name], cwd=REPO_ROOT, capture_output=True,
                                    text=True, check=False, env={**os.environ, "PYTHONPATH": REPO_ROOT})
        finally:
            os.remove(handle.name)
        if result.returncode != 0:
            log(f"the experiment decision could not be recorded in ML Metadata: {result.stderr[-1000:]}")
        log(f"experiment {decision.get('candidate_version')} against {decision.get('production_version')}: "
            f"{decision.get('outcome')} ({decision.get('reason')})")

    return record


def monitor_status_from(url: str) -> Callable[[], Optional[dict]]:
    """Reads the monitor's status over HTTP (None, and a warning, when it does not answer)."""
    from components.monitor.control import request

    def read() -> Optional[dict]:
        try:
            status, body = request("GET", f"{url.rstrip('/')}/v1/status", timeout=30)
        except OSError as error:
            print(f"monitor at {url} does not answer ({error}); its triggers are skipped this time", flush=True)
            return None
        return body if status == 200 else None

    return read


def monitor_window_closer(url: str) -> Callable[[str], None]:
    """Closes the monitor's open window under a label over HTTP (a warning when it does not answer)."""
    from components.monitor.control import request

    def close(label: str) -> None:
        try:
            status, body = request("POST", f"{url.rstrip('/')}/v1/windows/close?label={label}", timeout=300)
        except OSError as error:
            print(f"monitor at {url} does not answer ({error}); window {label} is not closed", flush=True)
            return
        print(f"closed monitor window {label}: {status}", flush=True)

    return close


def policy_arguments(parser: argparse.ArgumentParser, defaults: Optional[TriggerPolicy] = None) -> None:
    """Adds the trigger policy's options to a command line."""
    defaults = defaults or TriggerPolicy()
    parser.add_argument("--schedule", default=defaults.schedule_cron,
                        help="cron, seconds first (KFP's format), e.g. '0 0 6 * * *'; empty: off")
    parser.add_argument("--new-data-min-spans", type=int, default=defaults.new_data_min_spans)
    parser.add_argument("--max-metric-drop", type=float, default=None,
                        help="how much worse than blessed the primary metric may get, in its unit (default: the "
                             f"spec's monitoring.max_metric_drop, else {defaults.max_metric_drop})")
    parser.add_argument("--min-labeled-rows", type=int, default=defaults.min_labeled_rows)
    parser.add_argument("--drift-threshold", type=float, default=None,
                        help=f"default: the spec's monitoring.drift_threshold, else {defaults.drift_threshold}")
    parser.add_argument("--skew-threshold", type=float, default=None,
                        help=f"default: the spec's monitoring.skew_threshold, else {defaults.skew_threshold}")
    parser.add_argument("--min-features", type=int, default=defaults.min_features)
    parser.add_argument("--drift-features", default=None,
                        help="comma list; default: the spec's monitoring.features, else every compared feature")
    parser.add_argument("--skew-features", default=None,
                        help="comma list; default: the spec's monitoring.features, else every compared feature")


def policy_from(args: argparse.Namespace, spec=None, defaults: Optional[TriggerPolicy] = None) -> TriggerPolicy:
    """A TriggerPolicy from parsed ``policy_arguments``.

    What was given, else the spec's ``[monitoring]``, else ``defaults``.
    """
    given = {"schedule_cron": args.schedule, "new_data_min_spans": args.new_data_min_spans,
             "min_labeled_rows": args.min_labeled_rows, "min_features": args.min_features}
    for name in ("max_metric_drop", "drift_threshold", "skew_threshold"):
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    for name in ("drift_features", "skew_features"):
        if getattr(args, name) is not None:
            given[name] = tuple(f for f in getattr(args, name).split(",") if f)
    if spec is not None:
        return TriggerPolicy.from_spec(spec, **given)
    base = vars(defaults) if defaults is not None else {}
    return TriggerPolicy(**{**base, **given})


def watcher_health(state_dir: str, max_age: float) -> int:
    """0 when the watcher's last check is at most ``max_age`` seconds old, else 1 (with the reason)."""
    path = os.path.join(state_dir, "watch.json")
    if not os.path.exists(path):
        print(f"no check yet ({path} is missing)")
        return 1
    age = time.time() - os.path.getmtime(path)
    if age > max_age:
        print(f"last check {age:.0f} s ago, more than {max_age:.0f} s")
        return 1
    return 0


def params_from_dir(folder: str) -> list[str]:
    """KEY=VALUE for each file of a folder (a ConfigMap mounted as a volume: key -> file), dot files skipped.

    Raises:
        ValueError: The folder does not exist.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"--params-dir {folder} is not a folder (the ConfigMap ct-pipeline-defaults mounted?)")
    items = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not name.startswith(".") and os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                items.append(f"{name}={handle.read()}")
    return items


def run_params(args: argparse.Namespace) -> list[str]:
    """The run parameters: those of ``--params-dir``, then the KEY=VALUE arguments (which win)."""
    return (params_from_dir(args.params_dir) if getattr(args, "params_dir", "") else []) + list(
        getattr(args, "params", []))


def kfp_launcher(args: argparse.Namespace, state_dir: str, source: str, spec):
    """The cluster launcher from the command line (``--launcher kfp``).

    Raises:
        ValueError: No host or no pipeline version, or a parameter the pipeline does not declare.
    """
    from pipelines.ct.deliver import connect
    from pipelines.ct.spec import parse_params
    from pipelines.loop.kfp_launcher import KfpLauncher

    if not args.pipeline_version:
        raise ValueError("--launcher kfp needs --pipeline-version (or KFP_PIPELINE_VERSION)")
    # The spec travels as the run's dataset_spec: one uploaded pipeline serves every dataset.
    params = {"source_uri": source, "dataset_spec": spec.to_json(), **parse_params(run_params(args))}
    return KfpLauncher(connect(args.kfp_host), state_dir, args.pipeline_version,
                       lambda: source_spans(source, spec), params, args.train_months,
                       args.experiment, args.namespace, args.service_account)


def main(argv: Optional[list[str]] = None) -> int:
    """Command line of the loop."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.loop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--var", default=os.path.join(REPO_ROOT, "var"))
    parser.add_argument("--spec", default=None, help="the dataset spec (spec.toml) the runs use; its [monitoring] "
                                                     "thresholds are the triggers' defaults")
    parser.add_argument("--source", default=None, help="span source (default <var>/source/<the spec's dataset name>)")
    parser.add_argument("--train-months", type=int, default=3)
    parser.add_argument("--state", default=None, help="folder kept across restarts (default <var>/loop)")
    parser.add_argument("--launcher", choices=["local", "kfp"], default="local",
                        help="local: kfp.local runs (make run); kfp: runs on a Kubeflow Pipelines server")
    parser.add_argument("--kfp-host", default=os.environ.get("KFP_HOST", ""), help="KFP API (launcher kfp)")
    parser.add_argument("--namespace", default=os.environ.get("KFP_NAMESPACE", ""),
                        help="profile namespace of the runs (multi-user Kubeflow); empty on standalone KFP")
    parser.add_argument("--pipeline-version", default=os.environ.get("KFP_PIPELINE_VERSION", ""),
                        help="uploaded pipeline version to run (launcher kfp; make deploy-pipeline names it)")
    parser.add_argument("--params-dir", default="", help="pipeline parameters, one file per KEY holding its VALUE "
                                                          "(the ConfigMap ct-pipeline-defaults mounted); KEY=VALUE "
                                                          "arguments win")
    parser.add_argument("--experiment", default="continuous-training")
    parser.add_argument("--service-account", default=os.environ.get("KFP_SERVICE_ACCOUNT", ""),
                        help="service account of the runs' pods (launcher kfp)")
    commands = parser.add_subparsers(dest="command", required=True)
    on_demand = commands.add_parser("trigger", help="fire the on-demand trigger and run")
    on_demand.add_argument("--reason", default="asked for from the command line")
    watch = commands.add_parser("watch", help="check the triggers every --interval seconds and run")
    watch.add_argument("--interval", type=float, default=60.0)
    watch.add_argument("--monitor-url", default="", help="monitor for degradation, drift and skew triggers")
    watch.add_argument("--once", action="store_true", help="check once, run if needed, and exit")
    watch.add_argument("--close-windows", default="",
                       help="cron (6 fields) at which the monitor's open window is closed and judged (empty: never)")
    policy_arguments(watch)
    commands.add_parser("journal", help="print the journal")
    health = commands.add_parser("health", help="exit 0 when the watcher checked its triggers recently (a probe)")
    health.add_argument("--max-age", type=float, default=600.0, help="seconds since the last check")
    for command in (on_demand, watch):
        command.add_argument("params", nargs="*", help="pipeline parameters as KEY=VALUE")
    args = parser.parse_args(argv)
    var = os.path.abspath(args.var)
    state_dir = args.state or os.path.join(var, "loop")
    if args.command == "health":
        return watcher_health(state_dir, args.max_age)
    if args.command == "journal":
        for entry in RunCoordinator(state_dir, None).read_journal():
            print(json.dumps(entry))
        return 0
    if not args.spec:
        parser.error(f"{args.command} needs --spec (the dataset spec the runs use)")
    from components.dataset_spec import DatasetSpec, SpecError

    try:
        spec = DatasetSpec.load(args.spec)
    except SpecError as error:
        parser.error(str(error))
    source = args.source or os.path.join(var, "source", spec.name)
    if args.launcher == "kfp":
        try:
            launcher = kfp_launcher(args, state_dir, source, spec)
        except ValueError as error:
            parser.error(str(error))
    else:
        try:
            params = run_params(args)
        except ValueError as error:
            parser.error(str(error))
        launcher = LocalLauncher(var, source, args.train_months, params, spec_path=args.spec)
    coordinator = RunCoordinator(state_dir, launcher, log=lambda line: print(line, flush=True))
    now = datetime.datetime.now().replace(microsecond=0)
    if args.command == "trigger":
        coordinator.fire(Trigger("on_demand", args.reason, now.isoformat()))
        for outcome in coordinator.run_pending():
            print(json.dumps(outcome, indent=2))
        return 0
    try:
        policy = policy_from(args, spec)
    except ValueError as error:
        parser.error(str(error))
    watcher = Watcher(state_dir, policy, launcher.spans,
                      monitor_status_from(args.monitor_url) if args.monitor_url else None,
                      monitor_window_closer(args.monitor_url) if args.monitor_url else None, args.close_windows,
                      on_experiment=experiment_recorder(coordinator, os.path.join(var, "runs", "metadata.sqlite"),
                                                        lambda line: print(line, flush=True)))
    print(f"watching {source} every {args.interval:.0f} s with the {args.launcher} launcher; triggers: "
          f"{', '.join(k for k in KINDS if k != 'on_demand')}", flush=True)
    while True:
        for trigger in watcher.tick(datetime.datetime.now().replace(microsecond=0)):
            coordinator.fire(trigger)
        for outcome in coordinator.run_pending():
            watcher.ran(outcome)
            print(f"run {outcome.get('window')}: exit {outcome.get('exit_code')}, blessed {outcome.get('blessed')}, "
                  f"deployed {outcome.get('deployed_version')}", flush=True)
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
