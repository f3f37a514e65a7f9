"""Replays a span's flights as live traffic: the demo's application in front of the model server.

``python -m components.model_server.replay SPAN.parquet --url PREDICT_URL --rows N --ground-truth OUT.csv``

Sends a seeded sample of the span's flights as V1 requests of ``--batch``
instances without the weather (the server looks it up in the feature store, as for a real
caller), each with its own ``ce-id`` (the id KServe's logger and our monitor
join on), then writes what happened to those flights (arrived 15 minutes late
or more) as a ground-truth batch file ``request_id,index,label``. Cancelled
flights have no arrival, hence no label: they are not sent.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import uuid
from typing import Optional

from components import dataset
from components.model_server.control import http_json


def replay(span_file: str, predict_url: str, rows: int, batch: int, ground_truth_path: str,
           seed: int = 0) -> dict[str, float]:
    """Sends the sample, writes the ground truth; returns counts and latency figures.

    Raises:
        RuntimeError: The server refused a request (the answer is quoted).
    """
    import pandas as pd

    frame = pd.read_parquet(span_file)
    frame = frame[frame[dataset.LABEL_SOURCE].notna()]
    if len(frame) > rows:
        frame = frame.sample(n=rows, random_state=seed)
    records = json.loads(frame[dataset.FLIGHT_FEATURES].to_json(orient="records"))
    labels = (frame[dataset.LABEL_SOURCE] >= dataset.DELAY_THRESHOLD_MINUTES).astype(int).tolist()
    seconds = []
    with open(ground_truth_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["request_id", "index", "label"])
        for start in range(0, len(records), batch):
            request_id = str(uuid.uuid4())
            began = time.perf_counter()
            status, answer = http_json("POST", predict_url, {"instances": records[start:start + batch]},
                                       timeout=30, headers={"ce-id": request_id})
            seconds.append(time.perf_counter() - began)
            if status != 200:
                raise RuntimeError(f"the model server answered {status}: {answer}")
            for index, label in enumerate(labels[start:start + batch]):
                writer.writerow([request_id, index, label])
    seconds.sort()
    return {"rows": len(records), "requests": len(seconds),
            "p50_ms": round(1000 * seconds[len(seconds) // 2], 2) if seconds else 0.0,
            "positive_rate": round(sum(labels) / len(labels), 4) if labels else 0.0}


def main(argv: Optional[list[str]] = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m components.model_server.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("span_file")
    parser.add_argument("--url", required=True, help="V1 predict URL")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ground-truth", required=True, help="CSV file to write")
    args = parser.parse_args(argv)
    print(json.dumps(replay(args.span_file, args.url, args.rows, args.batch, args.ground_truth, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
