"""``make demo`` on a 10% slice over five months: the whole loop, from served traffic to the report."""

import json
import os
import subprocess

from browser import assert_renders_offline

from pipelines.examples.flights.demo.demo import main as demo_main
from pipelines.local.runner import REPO_ROOT, runtime_python
from pipelines.loop.triggers import Trigger, trigger_label
from tests.e2e.conftest import MIN_AUC


def test_the_loop_serves_monitors_triggers_retrains_and_reports(tmp_path):
    var = tmp_path / "demo"
    # Small slice: every new span counts, and drift/degradation thresholds that the slice's noise can cross
    # are checked by their own tests; here the point is that the pieces run together.
    code = demo_main(["--var", str(var), "--months", "5", "--fraction", "0.1", "--traffic-rows", "600",
                      "--new-data-min-spans", "1", "--on-demand", "2013-04", "--schedule", "0 0 0 1 4 *",
                      # Experiments that end within a month of the slice's traffic (300 rows a version):
                      "--experiment", "min_labelled_rows=100", "--experiment", "min_class_rows=10",
                      "--experiment", "max_labelled_rows=200",
                      f"metric_threshold={MIN_AUC}", "infra_max_p99_ms=2000", "metric_max_change=0.05"])
    assert code == 0
    with open(var / "demo.json", encoding="utf-8") as handle:
        results = json.load(handle)
    months = {m["month"]: m for m in results["months"]}
    runs = [run for m in results["months"] for run in m["runs"]]
    # The first model comes as soon as two spans are there; every later month is served and analysed.
    assert months["2013-02"]["runs"][0]["window"] == "2013-01:2013-02"
    deployed = [run["deployed_version"] for run in runs if run.get("deployed")]
    assert deployed and deployed[0] == "v0001"
    served = [m for m in results["months"] if m.get("window")]
    assert served and all(m["window"]["rows"] == m["traffic"]["rows"] for m in served)
    # Every served row got its label; the window's metric counts the rows of the version that served most.
    assert all(sum(m["window"]["rows_by_version"].values()) == m["window"]["rows"] for m in served)
    assert all(m["window"]["labeled_rows"] == m["window"]["rows_by_version"][m["window"]["model_version"]]
               for m in served)
    assert all(m["window"]["skew"] for m in served)  # the serving model's training sample was found
    # Traffic sends flights only: the server looked the weather up, and so did the monitor, for every row.
    assert all(m["window"]["looked_up_rows"] == m["window"]["rows"] for m in served)
    assert all("temp" in m["window"]["drift"] for m in served[1:])
    assert all(m["window"]["drift"] for m in served[1:])  # every month after the first is compared
    # The schedule (1 April) and the on-demand request (after April) fired, and each started or joined a run.
    kinds = {t["kind"] for m in results["months"] for t in m["triggers"]}
    assert {"new_data", "schedule", "on_demand"} <= kinds
    assert {t["kind"] for run in runs for t in run["triggers"]} == kinds
    # One run at a time: the journal shows each run finished before the next started.
    events = [e["event"] for e in results["journal"] if e["event"] in ("run_started", "run_finished")]
    assert events == ["run_started", "run_finished"] * (len(events) // 2)
    # The runs' triggers are their recorded reason in ML Metadata.
    answer = subprocess.run([runtime_python("data"), "-m", "components.lineage", "--store",
                             str(var / "runs" / "metadata.sqlite"), "runs"], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=True, env={**os.environ, "PYTHONPATH": REPO_ROOT})
    for run in runs:
        label = trigger_label([Trigger(**t) for t in run["triggers"]])
        assert f"trigger={label}" in answer.stdout
    # After the first model, a blessed candidate is an online experiment's (the demo's default), not production.
    later = [run for run in runs if run.get("deployed") and run["deployed_version"] != "v0001"]
    assert all(run["experiment"] for run in later), later
    assert later, "no candidate reached an online experiment"
    decided = {d["candidate_version"]: d for d in results["experiments"]["decisions"]}
    assert set(decided) <= {run["deployed_version"] for run in later} and decided
    assert all(d["outcome"] in ("promote", "roll_back") for d in decided.values())
    journaled = [e for e in results["journal"] if e["event"] == "experiment_decided"]
    assert {e["candidate_version"] for e in journaled} == set(decided)
    recorded = subprocess.run([runtime_python("data"), "-m", "components.lineage", "--store",
                               str(var / "runs" / "metadata.sqlite"), "--json", "experiments"], cwd=REPO_ROOT,
                              capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": REPO_ROOT})
    in_metadata = {e["candidate_version"]: e for e in json.loads(recorded.stdout)}
    assert set(in_metadata) == set(decided)
    assert all(e["outcome"] == decided[v]["outcome"] and set(e["model_uris"]) == {"production", "candidate"}
               for v, e in in_metadata.items())
    for name in ("index.html", "auc.png", "drift.png", "timeline.png", "experiments.png"):
        assert (var / "report" / name).stat().st_size > 2000
    page = (var / "report" / "index.html").read_text(encoding="utf-8")
    assert "Production model vs. retraining" in page and "2013-05" in page
    assert "Online experiments" in page and (var / "report" / "experiments.png").stat().st_size > 2000
    assert_renders_offline(str(var / "report" / "index.html"), str(tmp_path / "demo-report.png"))
