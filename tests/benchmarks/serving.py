"""Serving benchmark: our KServe model server against its model floor and MLServer (mlserver-sklearn).

Measured in one run on loopback, with ``hey`` (a Go load generator, one core: ``GOMAXPROCS=1``)
pinned to another core than a one-worker server (``taskset``), so the generator leaves the
server its core:

- the model floor, in this process: the compiled prediction path and ``Pipeline.predict_proba``
  on the same 1 and 100 rows (medians);
- the HTTP floor: ``GET /v2/models/<name>/ready`` on our server (kserve's FastAPI stack, no model);
- ours (``--workers 1``): V1 and V2, 1 and 100 rows, concurrency 1 and 8; MLServer with
  ``parallel_workers`` 0 (everything in one process, as ours) on V2;
- ours ``--workers 2`` against MLServer ``parallel_workers`` 2, 1-row V2 at concurrency 8;
- 1-row p99 at concurrency 1 while two other processes keep every core busy;
- with ``--feature-repo`` (a materialized feature store): Feast's feature server alone (1 and 100
  keys), and our server asked real flights with and without their weather: the p50/p99 the
  online lookup adds, V1 and V2, 1 and 100 rows.

Every response must be HTTP 200 (requests outside the schema's domains would be 400s and are
never sent). Prints a table with the targets of issue 14 and writes JSON with ``--output``.

Usage: ``python -m tests.benchmarks.serving [--model-dir DIR] [--requests N]``
(run with the serving runtime; ``--mlserver-python`` names the MLServer environment).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

from components import model_files, registry
from components.infra_validate.infra_validate import percentile
from components.model_server import control
from components.model_server.model import compare_on_source

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = "flights-delay"
#: issue 14's serving targets: (key, what, target text, check).
TARGETS = [
    ("rows_per_second", "served rows/s, 100-row V1 and V2 requests (one worker, best concurrency)", ">= 80k",
     lambda v: v >= 80_000),
    ("latency_p50", "latency p50, 1-row V1 and V2, concurrency 1 (ms, worse of the two)", "<= 1.5 ms",
     lambda v: v <= 1.5),
    ("latency_p99", "latency p99, 1-row V1 and V2, concurrency 1 (ms, worse of the two)", "<= 2.5 ms",
     lambda v: v <= 2.5),
    ("vs_mlserver_one", "req/s, 1-row V2, concurrency 8, ours / MLServer, one worker each", ">= 2x",
     lambda v: v >= 2),
    ("vs_mlserver_two", "req/s, 1-row V2, concurrency 8, ours / MLServer, two workers each", ">= 2x",
     lambda v: v >= 2),
    ("contention_p99", "p99, 1-row V1 and V2, concurrency 1, two busy processes on the cores (ms)", "<= 15 ms",
     lambda v: v <= 15),
    ("differing_rows", "rows whose served (compiled) probability differs from Pipeline.predict_proba's, "
     "every row of the benchmark's spans", "0", lambda v: v == 0),
    # Issue 16: measured, no target set.
    ("feature_server_p50", "Feast feature server alone, 1 key, concurrency 1: p50 (ms)", "measured", None),
    ("feature_server_p99", "Feast feature server alone, 1 key, concurrency 1: p99 (ms)", "measured", None),
    ("lookup_added_p50", "p50 added by the weather lookup, 1-row V1 and V2, concurrency 1 (ms, worse of the two)",
     "measured", None),
    ("lookup_added_p99", "p99 added by the weather lookup, 1-row V1 and V2, concurrency 1 (ms, worse of the two)",
     "measured", None),
]


def synthetic_rows(info: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Rows inside the data validation schema's domains (the server refuses others), drawn at random."""
    import random

    from components.schema_domains import read_domains
    from pipelines.examples.flights import dataset

    rng = random.Random(0)
    domains = read_domains(dataset.CURATED_SCHEMA)
    rows = []
    for _ in range(count):
        row = {}
        for name in info["features"]:
            domain = domains[name]
            if name in info["categorical_features"]:
                row[name] = rng.choice(sorted(domain.values))
            else:
                row[name] = round(rng.uniform(domain.minimum, domain.maximum), 2)
        rows.append(row)
    return rows


def v2_body(rows: list[dict[str, Any]], info: dict[str, Any], pandas_codec: bool) -> dict[str, Any]:
    """A V2 request: one tensor per feature the rows carry (MLServer also needs its pandas codec hint)."""
    inputs = []
    for name in info["features"]:
        if name not in rows[0]:
            continue  # looked up by the server
        categorical = name in info["categorical_features"]
        tensor = {"name": name, "shape": [len(rows)], "datatype": "BYTES" if categorical else "FP64",
                  "data": [row[name] for row in rows]}
        if pandas_codec and categorical:
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    body: dict[str, Any] = {"inputs": inputs}
    if pandas_codec:
        body["parameters"] = {"content_type": "pd"}
        body["outputs"] = [{"name": "predict_proba"}]
    return body


def hey(port: int, path: str, body: Optional[bytes], concurrency: int, requests: int,
        cpus: Optional[str]) -> dict[str, float]:
    """Runs ``hey``; returns req/s and p50/p99 in ms from its per-request CSV.

    Raises:
        RuntimeError: A response other than HTTP 200, or hey failed.
    """
    command = ["hey", "-n", str(requests), "-c", str(concurrency), "-o", "csv"]
    folder = tempfile.mkdtemp(prefix="hey-")
    if body is not None:
        with open(os.path.join(folder, "body.json"), "wb") as handle:
            handle.write(body)
        command += ["-m", "POST", "-T", "application/json", "-D", os.path.join(folder, "body.json")]
    command.append(f"http://127.0.0.1:{port}{path}")
    command = [*_pinned(cpus), *command]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "GOMAXPROCS": "1"},
                            check=False)
    elapsed = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    if result.returncode != 0:
        raise RuntimeError(f"hey failed: {result.stderr[-300:]}")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    statuses = {r["status-code"] for r in rows}
    requests = requests // concurrency * concurrency  # hey sends n/c per connection
    if statuses != {"200"} or len(rows) != requests:
        raise RuntimeError(f"{path}: {len(rows)} responses with statuses {sorted(statuses)}, expected "
                           f"{requests} x 200")
    latencies = [float(r["response-time"]) * 1000 for r in rows]
    offsets = [float(r["offset"]) + float(r["response-time"]) for r in rows]
    wall = max(offsets) if offsets else elapsed
    return {"rps": requests / wall, "p50": statistics.median(latencies), "p99": percentile(latencies, 99)}


def model_floor(model_dir: str, info: dict[str, Any], repeat: int = 300) -> dict[str, Any]:
    """Milliseconds per call, in this process, one thread: the compiled path and Pipeline.predict_proba."""
    from threadpoolctl import threadpool_limits

    from components.model_server.inputs import instances_to_columns
    from components.model_server.model import LoadedModel

    threadpool_limits(1)
    model = LoadedModel(model_dir, "bench")
    floor: dict[str, Any] = {"compiled_path": model.compiled is not None}
    for rows in (1, 100):
        columns = instances_to_columns(synthetic_rows(info, rows), info["features"], info["categorical_features"])
        for name in ("compiled", "pipeline"):
            times = []
            for _ in range(repeat):
                tick = time.perf_counter()
                if name == "compiled":
                    model.predict(columns.values, columns.rows)
                else:
                    model.reference_predict(columns.values)
                times.append((time.perf_counter() - tick) * 1000)
            floor[f"{name}_{rows}_ms"] = round(statistics.median(times), 4)
    floor["compiled_rows_per_second"] = round(100 / floor["compiled_100_ms"] * 1000)
    return floor


def start_ours(model_dir: str, workers: int, cpus: Optional[str],
               feature_server_url: str = "") -> tuple[subprocess.Popen, int]:
    """Starts our server on a free port (pinned to ``cpus`` when given); returns it once ready."""
    port = control.free_port()
    process = control.start_process(["--model-dir", model_dir], NAME, port,
                                    os.path.join(tempfile.mkdtemp(prefix="ours-"), "server.log"),
                                    extra_args=["--workers", str(workers)], launcher=_pinned(cpus),
                                    feature_server_url=feature_server_url)
    control.wait_ready(f"http://127.0.0.1:{port}", NAME, 60, process)
    if workers > 1:
        time.sleep(3)  # every worker loaded (the first one answering readiness says nothing of the others)
    return process, port


def _pinned(cpus: Optional[str]) -> list[str]:
    """``taskset -c CPUS`` when there is something to pin to and taskset exists."""
    return ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []


def burn(count: int) -> list[subprocess.Popen]:
    """Processes that keep a core busy each, until stopped."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
            for _ in range(count)]


def summarize(runs: list[dict[str, Any]], contention: dict[str, float]) -> dict[str, float]:
    """The target figures from the runs."""
    def pick(**keys):
        return [r for r in runs if all(r[k] == v for k, v in keys.items())]

    ours100 = pick(server="ours", workers=1, rows=100)
    single = pick(server="ours", workers=1, rows=1, concurrency=1)
    ratio = {}
    for workers in (1, 2):
        ours = pick(server="ours", workers=workers, protocol="V2", rows=1, concurrency=8)
        theirs = pick(server="mlserver", workers=workers, protocol="V2", rows=1, concurrency=8)
        ratio[workers] = round(ours[0]["rps"] / theirs[0]["rps"], 2) if ours and theirs else float("nan")
    return {"rows_per_second": round(min(max(r["rps"] * 100 for r in ours100 if r["protocol"] == protocol)
                                         for protocol in ("V1", "V2"))),
            "latency_p50": round(max(r["p50"] for r in single), 2),
            "latency_p99": round(max(r["p99"] for r in single), 2),
            "vs_mlserver_one": ratio[1], "vs_mlserver_two": ratio[2],
            "contention_p99": round(max(contention.values()), 2)}


def start_mlserver(python: str, model_dir: str, name: str, workers: int,
                   cpus: Optional[str]) -> tuple[subprocess.Popen, int]:
    """Starts MLServer with its scikit-learn runtime on the model's ``model.joblib``.

    ``workers`` is MLServer's ``parallel_workers`` (0: inference in the server process).
    """
    folder = tempfile.mkdtemp(prefix="mlserver-")
    http_port, grpc_port, metrics_port = control.free_port(), control.free_port(), control.free_port()
    with open(os.path.join(folder, "settings.json"), "w") as handle:
        json.dump({"http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port,
                   "parallel_workers": workers, "debug": False, "metrics_endpoint": None}, handle)
    model_folder = os.path.join(folder, name)
    os.makedirs(model_folder)
    with open(os.path.join(model_folder, "model-settings.json"), "w") as handle:
        json.dump({"name": name, "implementation": "mlserver_sklearn.SKLearnModel",
                   "parameters": {"uri": model_files.model_path(os.path.abspath(model_dir))}}, handle)
    mlserver = os.path.join(os.path.dirname(python), "mlserver")
    log = open(os.path.join(folder, "mlserver.log"), "w")
    command = [*_pinned(cpus), mlserver, "start", folder]
    # Its own folder as working directory: MLServer writes its metrics files there.
    process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True, cwd=folder)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"MLServer exited; see {log.name}")
        try:
            status, _ = (control.http_json("GET", f"http://127.0.0.1:{http_port}/v2/models/{name}/ready",
                                           timeout=5) if _port_open(http_port) else (0, None))
        except OSError:  # busy starting its workers
            status = 0
        if status == 200:
            return process, http_port
        time.sleep(0.5)
    raise RuntimeError("MLServer was not ready within 120 s")


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def real_flights(source: str, count: int) -> list[dict[str, Any]]:
    """``count`` real flights of a source's spans with their weather (seeded sample)."""
    import pandas as pd

    from components.sources import open_source, read_span_frame
    from pipelines.examples.flights import dataset
    from pipelines.examples.flights.dataset import SPAN_FILE, WEATHER_FILE, join_on_hour

    spans = open_source(source)
    frame = pd.concat([join_on_hour(read_span_frame(spans.read_bytes(span, SPAN_FILE)),
                                    read_span_frame(spans.read_bytes(span, WEATHER_FILE)))
                       for span in spans.spans(SPAN_FILE)], ignore_index=True).sample(n=count, random_state=0)
    return json.loads(frame[dataset.FEATURES].to_json(orient="records"))


def lookup_bench(model_dir: str, info: dict[str, Any], feature_repo: str, source: str, requests: int,
                 server_cpus: Optional[str], load_cpus: Optional[str]) -> dict[str, Any]:
    """The online lookup: Feast's feature server alone, then what it adds to our server's latency.

    Starts Feast's feature server on the repository (feature runtime) and our server asking it;
    real flights are sent with their weather (no lookup) and without (looked up), same server.
    """
    from pipelines.examples.flights import dataset

    url = f"http://127.0.0.1:{control.free_port()}"
    feature = [os.path.join(REPO_ROOT, ".venvs", "feature", "bin", "python"), "-m", "components.feature_store"]
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    subprocess.run([*feature, "start", "--repo", feature_repo, "--url", url], cwd=REPO_ROOT, env=env, check=True,
                   capture_output=True)
    figures: dict[str, Any] = {"feature_server": {}, "ours": []}
    try:
        full = real_flights(source, 100)
        flights = [{k: v for k, v in row.items() if k not in dataset.WEATHER_FEATURES} for row in full]
        year = int(info["lookup"]["defaults"]["year"])
        port = int(url.rsplit(":", 1)[1])
        for rows in (1, 100):
            body = {"features": [f"{dataset.WEATHER_VIEW}:{name}" for name in dataset.WEATHER_FEATURES],
                    "entities": {"origin": [f["origin"] for f in flights[:rows]],
                                 dataset.WEATHER_HOUR: [dataset.weather_hour(year, int(f["month"]), int(f["day"]),
                                                                             int(f["sched_dep_time"]) // 100)
                                                        for f in flights[:rows]]}}
            hey(port, "/get-online-features", json.dumps(body).encode(), 1, 50, load_cpus)
            got = hey(port, "/get-online-features", json.dumps(body).encode(), 1, requests, load_cpus)
            figures["feature_server"][rows] = {k: round(v, 3) for k, v in got.items()}
            print(f"feature server alone, {rows} key(s), c=1: p50 {got['p50']:.2f} ms  p99 {got['p99']:.2f} ms",
                  flush=True)
        ours, our_port = start_ours(model_dir, 1, server_cpus, feature_server_url=url)
        try:
            for protocol in ("V1", "V2"):
                path = f"/v1/models/{NAME}:predict" if protocol == "V1" else f"/v2/models/{NAME}/infer"
                for rows in (1, 100):
                    pair = {}
                    for sent, instances in (("with weather", full[:rows]), ("looked up", flights[:rows])):
                        body = {"instances": instances} if protocol == "V1" else v2_body(instances, info, False)
                        hey(our_port, path, json.dumps(body).encode(), 1, 50, load_cpus)
                        pair[sent] = hey(our_port, path, json.dumps(body).encode(), 1, requests, load_cpus)
                    run = {"protocol": protocol, "rows": rows,
                           **{f"{k}_{s.replace(' ', '_')}": round(v, 3) for s, f in pair.items() for k, v in f.items()},
                           "added_p50": round(pair["looked up"]["p50"] - pair["with weather"]["p50"], 3),
                           "added_p99": round(pair["looked up"]["p99"] - pair["with weather"]["p99"], 3)}
                    figures["ours"].append(run)
                    print(f"ours {protocol} rows={rows:<3} c=1: with weather p50 {run['p50_with_weather']:.2f} / "
                          f"p99 {run['p99_with_weather']:.2f} ms, looked up p50 {run['p50_looked_up']:.2f} / "
                          f"p99 {run['p99_looked_up']:.2f} ms: +{run['added_p50']:.2f} / +{run['added_p99']:.2f} ms",
                          flush=True)
        finally:
            control.stop_process(ours.pid)
    finally:
        subprocess.run([*feature, "stop", "--repo", feature_repo], cwd=REPO_ROOT, env=env, check=False,
                       capture_output=True)
    one_row = [r for r in figures["ours"] if r["rows"] == 1]
    figures["added_p50"] = max(r["added_p50"] for r in one_row)
    figures["added_p99"] = max(r["added_p99"] for r in one_row)
    return figures


def main(argv: Optional[list[str]] = None) -> int:
    """Runs the benchmark, prints the tables and the targets."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", help="model folder (default: production model in var/registry)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement (default 2000)")
    parser.add_argument("--mlserver-python", default=os.path.join(REPO_ROOT, ".venvs", "bench", "bin", "python"))
    parser.add_argument("--output", help="also write the results as JSON here")
    parser.add_argument("--source", help="span folder: compare the compiled path with Pipeline.predict_proba on "
                                         "every row of it (bit for bit)")
    parser.add_argument("--feature-repo", help="a materialized Feast repository: measure the online weather lookup "
                                               "(needs --source for real flights)")
    args = parser.parse_args(argv)
    if not shutil.which("hey"):
        parser.error("the load generator `hey` is not installed (Debian package hey; `make bench` installs it)")
    model_dir = args.model_dir
    if not model_dir:
        pointer = registry.current(os.path.join(REPO_ROOT, "var", "registry"), NAME)
        if pointer is None:
            parser.error("no --model-dir and no production model in var/registry: run `make run` first")
        model_dir = pointer["model_dir"]
    model_dir = os.path.abspath(model_dir)
    info = model_files.read_info(model_dir)
    cores = os.cpu_count() or 1
    server_cpus, load_cpus = ("1", "0") if cores >= 2 else (None, None)
    floor = model_floor(model_dir, info)
    print(f"model floor (in process, 1 thread): compiled {floor['compiled_1_ms']} ms (1 row), "
          f"{floor['compiled_100_ms']} ms (100 rows, {floor['compiled_rows_per_second']:,} rows/s); "
          f"Pipeline.predict_proba {floor['pipeline_1_ms']} / {floor['pipeline_100_ms']} ms", flush=True)
    if args.source:
        from components.dataset_spec import DatasetSpec

        flights = DatasetSpec.load(os.path.join(REPO_ROOT, "pipelines", "examples", "flights", "spec.toml"))
        parity = compare_on_source(model_dir, args.source, flights)
    else:
        parity = None
    if parity:
        print(f"compiled path vs Pipeline.predict_proba on {parity['rows']:,} rows: {parity['differing_rows']} differ",
              flush=True)
    runs: list[dict[str, Any]] = []
    bodies = {rows: synthetic_rows(info, rows) for rows in (1, 100)}

    def measure(server, workers, protocol, rows, concurrency, port, cpus):
        path = f"/v1/models/{NAME}:predict" if protocol == "V1" else f"/v2/models/{NAME}/infer"
        body = {"instances": bodies[rows]} if protocol == "V1" else v2_body(bodies[rows], info, server == "mlserver")
        data = json.dumps(body).encode()
        hey(port, path, data, concurrency, 50, cpus)  # warm-up
        figures = hey(port, path, data, concurrency, args.requests, cpus)
        run = {"server": server, "workers": workers, "protocol": protocol, "rows": rows, "concurrency": concurrency,
               **{k: round(v, 3) for k, v in figures.items()}}
        runs.append(run)
        print(f"{server:<9} w={workers} {protocol} rows={rows:<3} c={concurrency}  {figures['rps']:8.1f} req/s  "
              f"p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:7.2f} ms", flush=True)

    contention: dict[str, float] = {}
    ours, port = start_ours(model_dir, 1, server_cpus)
    try:
        http_floor = hey(port, f"/v2/models/{NAME}/ready", None, 1, args.requests, load_cpus)
        print(f"HTTP floor (GET ready): p50 {http_floor['p50']:.2f} ms, {http_floor['rps']:.0f} req/s", flush=True)
        for rows in (1, 100):
            for concurrency in (1, 8):
                for protocol in ("V1", "V2"):
                    measure("ours", 1, protocol, rows, concurrency, port, load_cpus)
        burners = burn(cores)
        try:
            time.sleep(1)
            for protocol in ("V1", "V2"):
                path = f"/v1/models/{NAME}:predict" if protocol == "V1" else f"/v2/models/{NAME}/infer"
                body = {"instances": bodies[1]} if protocol == "V1" else v2_body(bodies[1], info, False)
                contention[protocol] = round(hey(port, path, json.dumps(body).encode(), 1, args.requests,
                                                 None)["p99"], 3)
        finally:
            for burner in burners:
                burner.kill()
        print(f"p99 with {cores} busy processes: {contention}", flush=True)
    finally:
        control.stop_process(ours.pid)
    mlserver, ml_port = start_mlserver(args.mlserver_python, model_dir, NAME, workers=0, cpus=server_cpus)
    try:
        for rows in (1, 100):
            for concurrency in (1, 8):
                measure("mlserver", 1, "V2", rows, concurrency, ml_port, load_cpus)
    finally:
        control.stop_process(mlserver.pid)
    ours, port = start_ours(model_dir, 2, None)
    try:
        measure("ours", 2, "V2", 1, 8, port, None)
    finally:
        control.stop_process(ours.pid)
    mlserver, ml_port = start_mlserver(args.mlserver_python, model_dir, NAME, workers=2, cpus=None)
    try:
        measure("mlserver", 2, "V2", 1, 8, ml_port, None)
    finally:
        control.stop_process(mlserver.pid)
    lookup = None
    if args.feature_repo and args.source:
        lookup = lookup_bench(model_dir, info, args.feature_repo, args.source, args.requests, server_cpus, load_cpus)
    summary = summarize(runs, contention)
    if parity:
        summary["differing_rows"] = parity["differing_rows"]
    if lookup:
        summary["lookup_added_p50"], summary["lookup_added_p99"] = lookup["added_p50"], lookup["added_p99"]
        summary["feature_server_p50"] = lookup["feature_server"][1]["p50"]
        summary["feature_server_p99"] = lookup["feature_server"][1]["p99"]
    result = {"parity": parity, "model_floor": floor, "lookup": lookup,
              "http_floor": {k: round(v, 3) for k, v in http_floor.items()},
              "runs": runs, "contention_p99": contention, "summary": summary,
              "load_generator": "hey (GOMAXPROCS=1)" + (", pinned apart from a one-worker server"
                                                          if server_cpus else "")}
    print(markdown(result))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
    return 0


def markdown(result: dict[str, Any]) -> str:
    """The serving tables: targets, then every run."""
    floor, summary = result["model_floor"], result["summary"]
    lines = ["| measure | figure | target | |", "|---|---|---|---|"]
    for key, what, target, check in TARGETS:
        if key not in summary:
            continue
        value = summary[key]
        verdict = "" if check is None else "meets" if check(value) else "misses"
        lines.append(f"| {what} | **{value:,}** | {target} | {verdict} |")
    lines += ["", f"Model floor in process, one thread: compiled path {floor['compiled_1_ms']} ms for 1 row, "
              f"{floor['compiled_100_ms']} ms for 100 ({floor['compiled_rows_per_second']:,} rows/s); "
              f"`Pipeline.predict_proba` {floor['pipeline_1_ms']} / {floor['pipeline_100_ms']} ms. HTTP floor "
              f"(`GET .../ready` through kserve's stack): p50 {result['http_floor']['p50']} ms. "
              f"Load generator: {result['load_generator']}.", "",
              "| server | workers | protocol | rows | concurrency | req/s | p50 ms | p99 ms |",
              "|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['server']} | {r['workers']} | {r['protocol']} | {r['rows']} | {r['concurrency']} | "
                     f"{r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} |")
    lookup = result.get("lookup")
    if lookup:
        alone = {str(keys): figures for keys, figures in lookup["feature_server"].items()}  # JSON keys are text
        lines += ["", f"Online weather lookup, concurrency 1 (ms): Feast's feature server alone answers 1 key in "
                  f"p50 {alone['1']['p50']} / p99 {alone['1']['p99']}, 100 keys in p50 {alone['100']['p50']} / p99 "
                  f"{alone['100']['p99']}; our server, the same real flights sent with their weather and without "
                  "it (looked up):", "",
                  "| protocol | rows | with weather p50 / p99 | looked up p50 / p99 | added p50 / p99 |",
                  "|---|---|---|---|---|"]
        for r in lookup["ours"]:
            lines.append(f"| {r['protocol']} | {r['rows']} | {r['p50_with_weather']:.2f} / "
                         f"{r['p99_with_weather']:.2f} | {r['p50_looked_up']:.2f} / {r['p99_looked_up']:.2f} | "
                         f"+{r['added_p50']:.2f} / +{r['added_p99']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
