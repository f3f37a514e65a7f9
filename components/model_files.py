"""Layout of a model directory, shared by every runtime that reads or writes models.

A model directory holds ``model.joblib`` (the fitted sklearn Pipeline, the file
name KServe's sklearn runtime looks for), ``model.json`` (what it expects
and how it was made) and ``reference.parquet`` (a seeded sample of the training
features: the monitor's reference for training/serving skew). Standard library only.
"""

from __future__ import annotations

import json
import os
from typing import Any

MODEL_FILE = "model.joblib"
INFO_FILE = "model.json"
REFERENCE_FILE = "reference.parquet"
#: The curated schema the model was trained under (its domains are the serving skew guard's).
SCHEMA_FILE = "schema.pbtxt"
#: Rows kept in the reference sample: enough for stable histograms, small beside the model.
REFERENCE_ROWS = 20_000


def model_path(model_dir: str) -> str:
    """Path of the serialized model in a model directory."""
    return os.path.join(model_dir, MODEL_FILE)


def reference_path(model_dir: str) -> str:
    """Path of the training-features sample in a model directory."""
    return os.path.join(model_dir, REFERENCE_FILE)


def schema_path(model_dir: str) -> str:
    """Path of the curated schema in a model directory (absent when the dataset had none)."""
    return os.path.join(model_dir, SCHEMA_FILE)


def read_info(model_dir: str) -> dict[str, Any]:
    """Reads a model directory's ``model.json``.

    Raises:
        FileNotFoundError: The directory holds no model description.
    """
    with open(os.path.join(model_dir, INFO_FILE), encoding="utf-8") as handle:
        return json.load(handle)


def write_info(model_dir: str, info: dict[str, Any]) -> None:
    """Writes a model directory's ``model.json``."""
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, INFO_FILE), "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, sort_keys=True)


def has_model(model_dir: str) -> bool:
    """Tells whether a directory holds a model."""
    return os.path.isfile(model_path(model_dir))


def load_model(model_dir: str):
    """Loads the sklearn pipeline of a model folder (joblib; needs scikit-learn in the runtime)."""
    import joblib

    return joblib.load(model_path(model_dir))
