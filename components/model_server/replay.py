"""Replays a span's rows as live traffic: the demo's application in front of the model server.

``python -m components.model_server.replay SPAN_FILE --spec SPEC --url PREDICT_URL --rows N --ground-truth OUT.csv``

Sends a seeded sample of the span's rows (the spec's main feed) as V1 requests of ``--batch``
instances carrying the features a caller sends (a feature view's are looked up by the server, as
for a real caller), each with its own ``ce-id`` (the id KServe's logger and our monitor join
on), then writes each row's label (the spec's rule) as a ground-truth batch file
``request_id,index,label``. Rows without a label (a source column missing) are not sent.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import uuid
from typing import Optional

from components.model_server.control import http_json


def replay(span_file: str, spec, predict_url: str, rows: int, batch: int, ground_truth_path: str,
           seed: int = 0) -> dict[str, float]:
    """Sends the sample, writes the ground truth; returns counts, the rows each version answered, latency.

    Raises:
        RuntimeError: The server refused a request (the answer is quoted).
    """
    from components.labels import label_values
    from components.sources import read_feed

    with open(span_file, "rb") as handle:
        frame = read_feed(handle.read(), spec.feeds[spec.main_feed])
    truth = label_values(spec, frame)
    frame, truth = frame[truth.notna()], truth[truth.notna()]
    if len(frame) > rows:
        frame = frame.sample(n=rows, random_state=seed)
        truth = truth.loc[frame.index]
    records = json.loads(frame[spec.sent_features].to_json(orient="records"))
    labels = truth.astype(float if spec.task == "regression" else int).tolist()
    seconds, versions = [], {}
    with open(ground_truth_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["request_id", "index", "label"])
        for start in range(0, len(records), batch):
            request_id = str(uuid.uuid4())
            began = time.perf_counter()
            # A caller's key (the request's place in the replay): an online experiment assigns it to a
            # version by hash, so a replay splits the same way every time.
            status, answer = http_json("POST", predict_url, {"instances": records[start:start + batch]},
                                       timeout=30, headers={"ce-id": request_id,
                                                            "x-experiment-key": f"replay-{seed}-{start}"})
            seconds.append(time.perf_counter() - began)
            if status != 200:
                raise RuntimeError(f"the model server answered {status}: {answer}")
            # During an online experiment two versions answer: the rows each one served.
            version = str(answer.get("model_version", ""))
            versions[version] = versions.get(version, 0) + len(records[start:start + batch])
            for index, label in enumerate(labels[start:start + batch]):
                writer.writerow([request_id, index, label])
    seconds.sort()
    return {"rows": len(records), "requests": len(seconds),
            "p50_ms": round(1000 * seconds[len(seconds) // 2], 2) if seconds else 0.0,
            "mean_label": round(sum(labels) / len(labels), 4) if labels else 0.0, "rows_by_version": versions}


def main(argv: Optional[list[str]] = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m components.model_server.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("span_file")
    parser.add_argument("--spec", required=True, help="the dataset spec (spec.toml)")
    parser.add_argument("--url", required=True, help="V1 predict URL")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ground-truth", required=True, help="CSV file to write")
    args = parser.parse_args(argv)
    from components.dataset_spec import DatasetSpec, SpecError

    try:
        spec = DatasetSpec.load(args.spec)
    except SpecError as error:
        parser.error(str(error))
    print(json.dumps(replay(args.span_file, spec, args.url, args.rows, args.batch, args.ground_truth, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
