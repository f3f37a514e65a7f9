"""Layout of a local run folder, shared by the runner, its summary and the lineage recorder.

Each task folder holds the task's outputs plus ``executor_input.json``,
``timing.json`` (runtime, image, start, end, exit code, cached, peak memory) and, for tasks run
in a local runtime, ``task.log``; the run folder holds ``run.json``. Standard
library only.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

TASK_LOG = "task.log"
TASK_TIMING = "timing.json"
TASK_INPUT = "executor_input.json"
RUN_INFO = "run.json"
#: Folders of a run folder that are no task's: cached tasks' records, kfp.local's own cache.
CACHED_DIR = "cached"
KFP_CACHE_DIR = ".kfp_cache"


def read_json(path: str) -> Optional[Any]:
    """A JSON file's content, or None when it does not exist."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def task_folders(run_dir: str) -> dict[str, str]:
    """Task name -> folder, for every task recorded in a run folder (executed or cached)."""
    return {os.path.basename(root): root for root, _dirs, files in os.walk(run_dir) if TASK_TIMING in files}


def write_task_record(task_dir: str, executor_input: dict[str, Any], timing: dict[str, Any]) -> None:
    """Keeps a task's executor input and timing in its folder."""
    os.makedirs(task_dir, exist_ok=True)
    with open(os.path.join(task_dir, TASK_INPUT), "w", encoding="utf-8") as handle:
        json.dump(executor_input, handle, indent=2)
    with open(os.path.join(task_dir, TASK_TIMING), "w", encoding="utf-8") as handle:
        json.dump(timing, handle)


def run_id_of(run_dir: str) -> str:
    """The run's id: ``run.json``'s, else the KFP job name kfp.local gave it (its folder in the run folder)."""
    info = read_json(os.path.join(run_dir, RUN_INFO)) or {}
    if info.get("run_id"):
        return info["run_id"]
    for name in sorted(os.listdir(run_dir)):
        if os.path.isdir(os.path.join(run_dir, name)) and name not in (CACHED_DIR, KFP_CACHE_DIR):
            return name
    return os.path.basename(os.path.abspath(run_dir))
