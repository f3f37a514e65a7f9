"""Prediction windows on disk: joined request/response rows as Parquet, ground truth as JSON lines.

Layout under the monitor's state folder::

    windows/<label>/predictions.parquet   one row per served instance of the window
    windows/<label>/statistics.pb         TFDV statistics of the window (written by the analysis)
    windows/<label>/result.json           what the analysis found
    ground_truth.jsonl                    every label received: request_id, index, label
    reference/<model version>.pb          TFDV statistics of a model's training sample
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import deque
from typing import Any, Optional

from components.monitor.events import InferenceEvent, request_rows, response_outputs

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
GROUND_TRUTH_FILE = "ground_truth.jsonl"
PREDICTIONS_FILE = "predictions.parquet"
RESULT_FILE = "result.json"
STATISTICS_FILE = "statistics.pb"
#: Requests with no response after this long are dropped (the server refused them).
UNANSWERED_SECONDS = 600.0
#: A request with no response after this long counts as an error of the version it was routed to.
ERROR_AFTER_SECONDS = 30.0
#: Per version, the most recent request times and latencies kept for an experiment's guards.
REQUESTS_KEPT = 200_000
LATENCIES_KEPT = 20_000


class GroundTruthError(ValueError):
    """Ground truth that cannot be joined; the message names the problem."""


def check_label(label: str) -> str:
    """Returns a window label if it is safe as a folder name.

    Raises:
        ValueError: Letters, digits, ``.``, ``_`` and ``-`` only, 1 to 64 characters.
    """
    if not isinstance(label, str) or not _LABEL.match(label):
        raise ValueError(f"window label {label!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return label


def parse_ground_truth(records: Any, task: str = "binary_classification") -> list[tuple[str, int, float]]:
    """Checks ground-truth records: ``{"request_id": str, "index": int (default 0), "label": ...}``.

    The label is 0 or 1 for a binary classification, a finite number for a regression.

    Raises:
        GroundTruthError: Not a list of such objects (the first bad record is named).
    """
    import math

    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list) or not records:
        raise GroundTruthError("ground truth must be a non-empty list of {request_id, index, label} records")
    parsed = []
    for number, record in enumerate(records):
        if not isinstance(record, dict) or not record.get("request_id"):
            raise GroundTruthError(f"record {number}: needs a non-empty 'request_id'")
        wanted = "a finite number" if task == "regression" else "0 or 1"
        try:
            index = int(record.get("index", 0))
            value = record["label"]
            if isinstance(value, bool):
                raise TypeError
            label = float(value)
        except (KeyError, TypeError, ValueError):
            raise GroundTruthError(f"record {number}: 'label' must be {wanted} and 'index' an integer") from None
        good = math.isfinite(label) if task == "regression" else label in (0, 1)
        if not good or index < 0:
            raise GroundTruthError(f"record {number}: label must be {wanted} and index >= 0, "
                                   f"got label {record.get('label')!r}, index {record.get('index')!r}")
        parsed.append((str(record["request_id"]), index, label if task == "regression" else int(label)))
    return parsed


class WindowStore:
    """Joins logged requests and responses by event id and keeps them in windows."""

    def __init__(self, state_dir: str, features: list[str], task: str = "binary_classification"):
        """Args: state_dir: the monitor's folder; features: the model's feature names, in order; task: the spec's."""
        self.state_dir = state_dir
        self.features = features
        self.task = task
        self._lock = threading.Lock()
        self._requests: dict[str, tuple[float, list[dict[str, Any]], str]] = {}
        self._responses: dict[str, tuple[float, list[float], str]] = {}
        self._rows: list[dict[str, Any]] = []
        self.dropped_unanswered = 0
        #: Per model version (when the logger names it on requests): request times, the times of those
        #: dropped unanswered, and (request time, latency in ms from request to response event). Recent
        #: ones only, in memory: a restarted monitor starts them anew.
        self._request_times: dict[str, deque] = {}
        self._dropped_times: dict[str, deque] = {}
        self._latencies: dict[str, deque] = {}
        os.makedirs(os.path.join(state_dir, "windows"), exist_ok=True)
        self.ground_truth: dict[tuple[str, int], int] = {}
        path = os.path.join(state_dir, GROUND_TRUTH_FILE)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    record = json.loads(line)
                    self.ground_truth[(record["request_id"], record["index"])] = record["label"]

    def add(self, event: InferenceEvent) -> int:
        """Takes one event; returns how many prediction rows it completed.

        Raises:
            EventError: The body cannot be read as a request or response.
        """
        if event.kind == "request":
            rows = request_rows(event.body, self.features)
            with self._lock:
                if event.model_version:
                    self._request_times.setdefault(event.model_version, deque(maxlen=REQUESTS_KEPT)).append(
                        event.time)
                response = self._responses.pop(event.id, None)
                if response is None:
                    self._requests[event.id] = (event.time, rows, event.model_version)
                    return 0
                return self._join(event.id, event.time, rows, response, counted=bool(event.model_version))
        response = (event.time, *response_outputs(event.body, self.task))
        with self._lock:
            request = self._requests.pop(event.id, None)
            if request is None:
                self._responses[event.id] = response
                return 0
            return self._join(event.id, request[0], request[1], response, counted=bool(request[2]))

    def _join(self, event_id: str, at: float, rows: list[dict[str, Any]], response: tuple,
              counted: bool = True) -> int:
        answered_at, scores, version = response
        if len(scores) != len(rows):
            return 0  # a response for another body under the same id: nothing trustworthy to keep
        if version and not counted:
            # KServe's logger names no version on the request: an answered one counts for the version
            # that answered (a refused one cannot be attributed: no error counts per version then).
            self._request_times.setdefault(version, deque(maxlen=REQUESTS_KEPT)).append(at)
        if version:
            self._latencies.setdefault(version, deque(maxlen=LATENCIES_KEPT)).append(
                (at, max(0.0, (answered_at - at) * 1000)))
        for index, (row, score) in enumerate(zip(rows, scores)):
            self._rows.append({"request_id": event_id, "index": index, "time": at, "model_version": version,
                               "score": score, **row})
        return len(rows)

    def add_ground_truth(self, records: Any) -> int:
        """Stores ground-truth labels (kept across windows and restarts); returns how many were stored.

        Raises:
            GroundTruthError: A record is malformed; nothing of the batch is stored then.
        """
        parsed = parse_ground_truth(records, self.task)
        with self._lock:
            with open(os.path.join(self.state_dir, GROUND_TRUTH_FILE), "a", encoding="utf-8") as handle:
                for request_id, index, label in parsed:
                    handle.write(json.dumps({"request_id": request_id, "index": index, "label": label}) + "\n")
                    self.ground_truth[(request_id, index)] = label
        return len(parsed)

    def pending(self) -> dict[str, int]:
        """Rows waiting in the open window and events waiting for their other half."""
        with self._lock:
            return {"rows": len(self._rows), "requests": len(self._requests), "responses": len(self._responses)}

    def close(self, label: str) -> str:
        """Writes the open window's rows as ``windows/<label>/predictions.parquet`` and starts a new window.

        Returns:
            The window's folder.

        Raises:
            ValueError: Bad label, or a window of that name exists.
        """
        import pandas as pd

        folder = os.path.join(self.state_dir, "windows", check_label(label))
        if os.path.exists(os.path.join(folder, PREDICTIONS_FILE)):
            raise ValueError(f"window {label!r} exists already")
        with self._lock:
            rows, self._rows = self._rows, []
            cutoff = time.time() - UNANSWERED_SECONDS
            stale = [key for key, (at, _, _) in self._requests.items() if at < cutoff]
            for key in stale:
                at, _, version = self._requests.pop(key)
                if version:
                    self._dropped_times.setdefault(version, deque(maxlen=REQUESTS_KEPT)).append(at)
            self.dropped_unanswered += len(stale)
        columns = ["request_id", "index", "time", "model_version", "score", *self.features]
        os.makedirs(folder, exist_ok=True)
        frame = pd.DataFrame(rows, columns=columns)
        temporary = os.path.join(folder, f".{PREDICTIONS_FILE}.tmp")
        frame.to_parquet(temporary, index=False)
        os.replace(temporary, os.path.join(folder, PREDICTIONS_FILE))
        return folder

    def serving_counts(self, version: str, since: float = 0.0, now: Optional[float] = None) -> dict[str, Any]:
        """What the logger said of one version's requests since a time: how many, errors, latencies in ms.

        An error is a request with no response after ``ERROR_AFTER_SECONDS`` (the server refused it).
        """
        cutoff = (now or time.time()) - ERROR_AFTER_SECONDS
        with self._lock:
            waiting = sum(1 for at, _, v in self._requests.values() if v == version and since <= at < cutoff)
            return {"requests": sum(1 for at in self._request_times.get(version, ()) if at >= since),
                    "errors": waiting + sum(1 for at in self._dropped_times.get(version, ()) if at >= since),
                    "latencies_ms": [ms for at, ms in self._latencies.get(version, ()) if at >= since]}

    def rows_since(self, since: float, versions: set[str]):
        """Every served row since a time answered by one of ``versions``, closed windows and the open one.

        Each row has its ``label`` (NaN where no ground truth arrived).
        """
        import pandas as pd

        columns = ["request_id", "index", "time", "model_version", "score"]
        frames = []
        for label in self.closed_windows():
            path = os.path.join(self.state_dir, "windows", label, PREDICTIONS_FILE)
            if os.path.getmtime(path) < since:
                continue  # closed before the start: none of its rows can be later
            frames.append(pd.read_parquet(path, columns=columns))
        with self._lock:
            frames.append(pd.DataFrame([{name: row[name] for name in columns} for row in self._rows], columns=columns))
            truth = dict(self.ground_truth)
        frame = pd.concat(frames, ignore_index=True)
        frame = frame[(frame["time"] >= since) & frame["model_version"].isin(versions)].reset_index(drop=True)
        frame["label"] = pd.to_numeric(pd.Series([truth.get((r, int(i))) for r, i in
                                                  zip(frame["request_id"], frame["index"])], dtype="object"),
                                       errors="coerce")
        return frame

    def window_frame(self, label: str):
        """A closed window's rows with a ``label`` column (NaN where no ground truth arrived)."""
        import pandas as pd

        frame = pd.read_parquet(os.path.join(self.state_dir, "windows", check_label(label), PREDICTIONS_FILE))
        with self._lock:
            truth = dict(self.ground_truth)
        frame["label"] = [truth.get((r, int(i))) for r, i in zip(frame["request_id"], frame["index"])]
        frame["label"] = pd.to_numeric(frame["label"], errors="coerce")
        return frame

    def closed_windows(self) -> list[str]:
        """Labels of the closed windows, in the order they were closed."""
        root = os.path.join(self.state_dir, "windows")
        found = [(os.path.getmtime(os.path.join(root, name, PREDICTIONS_FILE)), name) for name in os.listdir(root)
                 if os.path.exists(os.path.join(root, name, PREDICTIONS_FILE))]
        return [name for _, name in sorted(found)]

    def read_result(self, label: str) -> Optional[dict[str, Any]]:
        """The stored analysis of a window, or None."""
        path = os.path.join(self.state_dir, "windows", label, RESULT_FILE)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def write_result(self, label: str, result: dict[str, Any]) -> None:
        """Stores the analysis of a window."""
        path = os.path.join(self.state_dir, "windows", check_label(label), RESULT_FILE)
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, sort_keys=True)
        os.replace(path + ".tmp", path)
