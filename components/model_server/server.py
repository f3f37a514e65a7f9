"""A KServe model that serves the flights-delay sklearn pipeline (V1 protocol).

Requests name their features (``{"instances": [{"carrier": "UA", ...}]}``), or
give them as lists in the order of ``model.json``. Bad requests are refused
with ``InvalidInput`` (HTTP 400) naming the problem, never a 500.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Optional

import kserve
from kserve.errors import InvalidInput

from components import model_files


def _check_value(name: str, value: Any, categorical: bool, row: int) -> Any:
    if value is None:
        return None
    if categorical:
        if not isinstance(value, str):
            raise InvalidInput(f"instance {row}: feature {name!r} must be a string or null, "
                               f"got {type(value).__name__}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"instance {row}: feature {name!r} must be a number or null, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidInput(f"instance {row}: feature {name!r} must be finite, got {value}")
    return float(value)


def instances_to_rows(instances: Any, features: list[str], categorical: list[str]) -> list[dict[str, Any]]:
    """Checks V1 instances against the model's features and returns them as named rows.

    Raises:
        InvalidInput: Instances are missing or empty, a row has unknown or
            missing features, a wrong number of values, a wrong type or a
            non-finite number.
    """
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("'instances' must be a non-empty list")
    categorical_set = set(categorical)
    rows = []
    for index, instance in enumerate(instances):
        if isinstance(instance, dict):
            unknown = sorted(set(instance) - set(features))
            missing = [f for f in features if f not in instance]
            if unknown:
                raise InvalidInput(f"instance {index}: unknown feature(s) {', '.join(unknown)}; "
                                   f"expected {', '.join(features)}")
            if missing:
                raise InvalidInput(f"instance {index}: missing feature(s) {', '.join(missing)}")
            values = instance
        elif isinstance(instance, list):
            if len(instance) != len(features):
                raise InvalidInput(f"instance {index}: expected {len(features)} values "
                                   f"({', '.join(features)}), got {len(instance)}")
            values = dict(zip(features, instance))
        else:
            raise InvalidInput(f"instance {index}: must be an object of named features or a list of values")
        rows.append({name: _check_value(name, values[name], name in categorical_set, index) for name in features})
    return rows


class FlightsDelayModel(kserve.Model):
    """Serves a model directory written by the train step."""

    def __init__(self, name: str, model_dir: str):
        """Args: name: the model's name in URLs; model_dir: folder with model.joblib and model.json."""
        super().__init__(name)
        self.model_dir = model_dir
        self.pipeline = None
        self.info: dict[str, Any] = {}

    def load(self) -> bool:
        """Loads the sklearn pipeline and its description."""
        import joblib

        self.info = model_files.read_info(self.model_dir)
        self.pipeline = joblib.load(model_files.model_path(self.model_dir))
        self.ready = True
        return self.ready

    def predict_rows(self, rows: list[dict[str, Any]]) -> dict[str, list]:
        """Probabilities and 0/1 predictions for checked rows."""
        import pandas as pd

        frame = pd.DataFrame(rows, columns=self.info["features"])
        for name in self.info["numeric_features"]:
            frame[name] = frame[name].astype("float64")
        probabilities = self.pipeline.predict_proba(frame)[:, 1]
        return {"predictions": [int(p >= 0.5) for p in probabilities],
                "probabilities": [float(p) for p in probabilities]}

    def predict(self, payload: Any, headers: Optional[dict[str, str]] = None) -> dict[str, list]:
        """V1 predict: ``{"instances": [...]}`` -> ``{"predictions": [...], "probabilities": [...]}``."""
        if isinstance(payload, (bytes, str)):
            # Bodies sent without a JSON content type reach the model undecoded.
            try:
                payload = json.loads(payload)
            except ValueError as error:
                raise InvalidInput(f"request body is not valid JSON: {error}") from None
        if not isinstance(payload, dict) or "instances" not in payload:
            raise InvalidInput("request body must be a JSON object with 'instances'")
        rows = instances_to_rows(payload["instances"], self.info["features"], self.info["categorical_features"])
        return self.predict_rows(rows)


def serve(model_dir: str, model_name: str, port: int) -> None:
    """Starts the KServe model server (blocks until stopped)."""
    model = FlightsDelayModel(model_name, model_dir)
    model.load()
    print(f"serving {model_name} from {os.path.abspath(model_dir)} on http://127.0.0.1:{port}", flush=True)
    kserve.ModelServer(http_port=port, enable_grpc=False, workers=1).start([model])
