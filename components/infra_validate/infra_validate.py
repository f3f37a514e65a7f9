"""Infra validation logic: serve the candidate in the serving runtime and check its answers.

The candidate is loaded by the same model server that production runs, in a
separate process on a free loopback port. Its predictions for sample test rows
must equal those of the training runtime (the guard against training/serving
skew), and its p99 latency must stay under a bound.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

from components.model_server import control


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def body_features(samples: dict[str, Any]) -> dict[str, str]:
    """Feature name -> V2 datatype, from the sample rows (strings are BYTES, the rest FP64)."""
    kinds: dict[str, str] = {}
    for row in samples["instances"]:
        for name, value in row.items():
            if value is not None:
                kinds[name] = "BYTES" if isinstance(value, str) else "FP64"
            else:
                kinds.setdefault(name, "FP64")
    return kinds


def v2_request(instances: list[dict[str, Any]], datatypes: dict[str, str]) -> dict[str, Any]:
    """The same rows as a V2 (Open Inference Protocol) request: one tensor per feature."""
    return {"inputs": [{"name": name, "shape": [len(instances)], "datatype": datatype,
                        "data": [row[name] for row in instances]} for name, datatype in datatypes.items()]}


def check_serving(model_dir: str, samples: dict[str, Any], max_p99_ms: float, tolerance: float = 1e-9,
                  requests: int = 100, ready_timeout: float = 60.0, fork_server: bool = False) -> dict[str, Any]:
    """Serves the model, queries it with sample rows and judges the answers.

    Args:
        model_dir: The candidate model folder.
        samples: ``{"instances": [...], "probabilities": [...]}`` from the training runtime
            (a regression: ``"predictions"``, the predicted values).
        max_p99_ms: Bound on the p99 latency of single-row requests.
        tolerance: Largest allowed absolute difference between probabilities.
        requests: Number of single-row requests timed.
        ready_timeout: Seconds the server may take to become ready.
        fork_server: Fork this process into the server (``control.start_process``'s ``fork``).

    Returns:
        ``blessed``, ``reasons`` and the measurements (latencies, largest difference).
    """
    name = "candidate"
    port = control.free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = os.path.join(tempfile.mkdtemp(prefix="infra-validate-"), "server.log")
    started = time.monotonic()
    process = control.start_process(["--model-dir", model_dir], name, port, log_path, fork=fork_server)
    try:
        try:
            control.wait_ready(url, name, ready_timeout, process)
        except RuntimeError as error:
            with open(log_path, encoding="utf-8", errors="replace") as handle:
                tail = handle.read()[-2000:]
            return {"blessed": False, "reasons": [f"model did not load in the serving runtime: {error}"],
                    "server_log_tail": tail}
        load_seconds = time.monotonic() - started
        predict_url = f"{url}/v1/models/{name}:predict"
        status, body = control.http_json("POST", predict_url, {"instances": samples["instances"]}, timeout=30)
        if status != 200:
            return {"blessed": False, "reasons": [f"batch prediction answered HTTP {status}: {body}"]}
        # What a classifier's parity is judged on: the probability; a regressor's: the predicted value.
        key, output = ("predictions", "prediction") if "predictions" in samples else ("probabilities", "probability")
        served = body[key]
        expected = samples[key]
        status, v2_body = control.http_json("POST", f"{url}/v2/models/{name}/infer",
                                            v2_request(samples["instances"], body_features(samples)), timeout=30)
        if status != 200:
            return {"blessed": False, "reasons": [f"V2 batch inference answered HTTP {status}: {v2_body}"]}
        served_v2 = next(o["data"] for o in v2_body["outputs"] if o["name"] == output)
        differences = [abs(a - b) for a, b in zip(served, expected)] + \
            [abs(a - b) for a, b in zip(served_v2, expected)]
        max_difference = max(differences) if differences else 0.0
        latencies = []
        instances = samples["instances"]
        for i in range(min(10, len(instances))):  # warm-up, untimed: first requests pay one-off costs
            control.http_json("POST", predict_url, {"instances": [instances[i]]})
        for i in range(requests):
            tick = time.perf_counter()
            status, _ = control.http_json("POST", predict_url, {"instances": [instances[i % len(instances)]]})
            latencies.append((time.perf_counter() - tick) * 1000)
            if status != 200:
                return {"blessed": False, "reasons": [f"single-row prediction answered HTTP {status}"]}
    finally:
        control.stop_process(process.pid)

    p50, p99 = statistics.median(latencies), percentile(latencies, 99)
    reasons, blessed = [], True
    if len(served) != len(expected) or len(served_v2) != len(expected):
        blessed = False
        reasons.append(f"served {len(served)} (V1) and {len(served_v2)} (V2) predictions for {len(expected)} rows")
    elif max_difference > tolerance:
        blessed = False
        reasons.append(f"serving predictions differ from training predictions by up to {max_difference:.3g} "
                       f"(tolerance {tolerance:g}): training/serving skew")
    else:
        reasons.append(f"{len(served)} served predictions, V1 and V2, equal the training runtime's "
                       f"(max difference {max_difference:.3g})")
    if p99 > max_p99_ms:
        blessed = False
        reasons.append(f"p99 latency {p99:.1f} ms > {max_p99_ms:.1f} ms")
    else:
        reasons.append(f"p99 latency {p99:.1f} ms <= {max_p99_ms:.1f} ms")
    return {"blessed": blessed, "reasons": reasons, "max_difference": max_difference,
            "p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "requests": requests,
            "load_seconds": round(load_seconds, 3)}
