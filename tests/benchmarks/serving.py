"""Serving benchmark: our KServe model server against MLServer (mlserver-sklearn) on the same model file.

Requests/s and p50/p99 latency for 1-row and 100-row requests at concurrency 1
and 8, V1 and V2 for ours, V2 for MLServer, measured in one run on loopback
(load generator on the same machine). Prints a table and the ratios.

Usage: ``python -m tests.benchmarks.serving [--model-dir DIR] [--requests N]``
(run with the serving runtime; ``--mlserver-python`` names the MLServer environment).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Optional

from components import model_files, registry
from components.infra_validate.infra_validate import percentile
from components.model_server import control

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def synthetic_rows(info: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Plausible rows for the model's features (values do not matter for speed)."""
    import random

    rng = random.Random(0)
    categories = {"carrier": ["UA", "EV", "DL", "B6", "AA"], "origin": ["EWR", "JFK", "LGA"],
                  "dest": ["ORD", "ATL", "LAX", "BOS", "MIA"]}
    rows = []
    for _ in range(count):
        row = {}
        for name in info["features"]:
            if name in info["categorical_features"]:
                row[name] = rng.choice(categories.get(name, ["x"]))
            else:
                row[name] = round(rng.uniform(1, 1000), 2)
        rows.append(row)
    return rows


def v2_body(rows: list[dict[str, Any]], info: dict[str, Any], pandas_codec: bool) -> dict[str, Any]:
    """A V2 request: one tensor per feature (MLServer also needs its pandas codec hint)."""
    inputs = []
    for name in info["features"]:
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


def load(port: int, path: str, body: bytes, concurrency: int, requests: int) -> dict[str, float]:
    """Sends ``requests`` POSTs from ``concurrency`` keep-alive connections; returns req/s, p50, p99 (ms)."""
    latencies: list[float] = []
    errors = []
    lock = threading.Lock()
    per_worker = max(1, requests // concurrency)

    def worker():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for _ in range(per_worker):
            tick = time.perf_counter()
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            mine.append((time.perf_counter() - tick) * 1000)
            if response.status != 200:
                errors.append(response.status)
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. HTTP {errors[0]} on {path}")
    return {"rps": len(latencies) / elapsed, "p50": statistics.median(latencies), "p99": percentile(latencies, 99)}


def start_mlserver(python: str, model_dir: str, name: str) -> tuple[subprocess.Popen, int]:
    """Starts MLServer with its scikit-learn runtime on the model's ``model.joblib``."""
    folder = tempfile.mkdtemp(prefix="mlserver-")
    http_port, grpc_port, metrics_port = control.free_port(), control.free_port(), control.free_port()
    with open(os.path.join(folder, "settings.json"), "w") as handle:
        json.dump({"http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port,
                   "parallel_workers": 0, "debug": False}, handle)
    model_folder = os.path.join(folder, name)
    os.makedirs(model_folder)
    with open(os.path.join(model_folder, "model-settings.json"), "w") as handle:
        json.dump({"name": name, "implementation": "mlserver_sklearn.SKLearnModel",
                   "parameters": {"uri": model_files.model_path(os.path.abspath(model_dir))}}, handle)
    mlserver = os.path.join(os.path.dirname(python), "mlserver")
    log = open(os.path.join(folder, "mlserver.log"), "w")
    process = subprocess.Popen([mlserver, "start", folder], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"MLServer exited; see {log.name}")
        status, _ = (control.http_json("GET", f"http://127.0.0.1:{http_port}/v2/models/{name}/ready", timeout=2)
                     if _port_open(http_port) else (0, None))
        if status == 200:
            return process, http_port
        time.sleep(0.5)
    raise RuntimeError("MLServer was not ready within 120 s")


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main(argv: Optional[list[str]] = None) -> int:
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", help="model folder (default: production model in var/registry)")
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement (default 400)")
    parser.add_argument("--mlserver-python", default=os.path.join(REPO_ROOT, ".venvs", "bench", "bin", "python"))
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    model_dir = args.model_dir
    if not model_dir:
        pointer = registry.current(os.path.join(REPO_ROOT, "var", "registry"), "flights-delay")
        if pointer is None:
            parser.error("no --model-dir and no production model in var/registry: run `make run` first")
        model_dir = pointer["model_dir"]
    info = model_files.read_info(model_dir)
    name = "flights-delay"
    ours_port = control.free_port()
    ours = control.start_process(["--model-dir", model_dir], name, ours_port,
                                 os.path.join(tempfile.mkdtemp(prefix="ours-"), "server.log"))
    mlserver, ml_port = start_mlserver(args.mlserver_python, model_dir, name)
    results = []
    try:
        control.wait_ready(f"http://127.0.0.1:{ours_port}", name, 60, ours)
        for rows in (1, 100):
            sample = synthetic_rows(info, rows)
            cases = [("ours", "V1", ours_port, f"/v1/models/{name}:predict", {"instances": sample}),
                     ("ours", "V2", ours_port, f"/v2/models/{name}/infer", v2_body(sample, info, False)),
                     ("mlserver", "V2", ml_port, f"/v2/models/{name}/infer", v2_body(sample, info, True))]
            for concurrency in (1, 8):
                for server, protocol, port, path, body in cases:
                    data = json.dumps(body).encode()
                    load(port, path, data, concurrency, 20)  # warm-up
                    figures = load(port, path, data, concurrency, args.requests)
                    results.append({"server": server, "protocol": protocol, "rows": rows,
                                    "concurrency": concurrency, **{k: round(v, 2) for k, v in figures.items()}})
                    print(f"{server:<9} {protocol} rows={rows:<3} c={concurrency}  {figures['rps']:8.1f} req/s  "
                          f"p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:7.2f} ms", flush=True)
    finally:
        control.stop_process(ours.pid)
        control.stop_process(mlserver.pid)
    print("\n| server | protocol | rows | concurrency | req/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['server']} | {r['protocol']} | {r['rows']} | {r['concurrency']} | {r['rps']} | {r['p50']} | "
              f"{r['p99']} |")
    print("\nRatios, ours V2 / MLServer V2 (req/s; > 1 means ours is faster):")
    for rows in (1, 100):
        for concurrency in (1, 8):
            pick = {(r["server"], r["protocol"]): r for r in results
                    if r["rows"] == rows and r["concurrency"] == concurrency}
            ratio = pick[("ours", "V2")]["rps"] / pick[("mlserver", "V2")]["rps"]
            v1 = pick[("ours", "V1")]["rps"] / pick[("mlserver", "V2")]["rps"]
            print(f"  rows={rows:<3} c={concurrency}: V2 {ratio:.2f}x, ours V1 vs MLServer V2 {v1:.2f}x")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
