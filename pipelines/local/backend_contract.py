"""Backend-contract mode for local runs: tasks meet the KFP v2 backend's rules, not kfp.local's.

``kfp.local`` hands a task's artifact metadata to the next task exactly as written and
records nothing in ML Metadata. On a cluster the KFP driver and launcher store every
execution and artifact in MLMD and hand metadata on *as MLMD stored it* (lists and dicts
wrapped, booleans as 0/1, numbers as doubles, a null fails the task). In this mode a
local run goes through a stand-in for that backend (``components/lineage/kfp_backend.py``,
in the data runtime where ml-metadata lives, which names the upstream files it follows):

- before a task runs: the driver's execution (RUNNING, input parameters, INPUT events);
- after it exits: the launcher's recording of its outputs (or the backend's error, which
  then fails the task), the execution published COMPLETE or FAILED, and the task's
  executor output file rewritten with the artifacts as the driver resolves them for the
  next task (the component's own file is kept as ``executor_output.component.json``);
- cache hits: a CACHED execution with the cached outputs;
- with a target (``pod_refusals``, ``pipelines.ct.pods``): a task whose pod the target's driver and the
  kubelet would not start (a required Secret or ConfigMap key missing from the namespace) fails
  before it runs, with the kubelet's reason. The pod's environment is not given to the local
  process: its values are the cluster's (endpoints, credentials), the local run keeps its own.

It is a stand-in for what cannot run here (the Go backend), not the backend itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from typing import Any, Optional

COMPONENT_OUTPUT = "executor_output.component.json"


class ContractError(RuntimeError):
    """The backend stand-in could not be reached or answered nonsense."""


class BackendContract:
    """Drives the MLMD writer of the backend stand-in for one run."""

    def __init__(self, metadata_uri: str, pipeline_name: str, pipeline_root: str, parameters: dict[str, Any],
                 python: str, repo_root: str, pod_refusals: Optional[dict[str, list[str]]] = None):
        """Starts the writer.

        Args:
            metadata_uri: The MLMD store the backend writes (SQLite path, mysql://..., grpc://...).
            pipeline_name: ``pipelineInfo.name`` of the compiled pipeline.
            pipeline_root: The run's pipeline root (kfp.local's).
            parameters: The run's parameters, as a run on the cluster would be created with them.
            python: Interpreter of the data runtime (ml-metadata).
            repo_root: Folder that makes ``components`` importable.
            pod_refusals: Task name -> why the target's backend would not start its pod
                (``pipelines.ct.pods.pod_refusals``); None when no target is modelled.
        """
        self.pod_refusals = pod_refusals or {}
        self.pipeline_name = pipeline_name
        self.pipeline_root = os.path.abspath(pipeline_root)
        self.parameters = parameters
        self.metadata_uri = metadata_uri
        self._lock = threading.Lock()
        self._root_started = False
        self.run_id: Optional[str] = None
        self._process = subprocess.Popen(
            [python, "-m", "components.lineage.kfp_backend", "--store", metadata_uri],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, cwd=repo_root,
            env={**os.environ, "PYTHONPATH": repo_root})

    def _call(self, op: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            if self._process.poll() is not None:
                raise ContractError(f"the KFP backend stand-in exited with code {self._process.returncode}")
            self._process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        if not line:
            raise ContractError("the KFP backend stand-in closed its output (see its error above)")
        return json.loads(line)

    def refusal(self, executor_input: dict[str, Any]) -> Optional[str]:
        """Why the task's pod would not start on the modelled target (the first reason), or None."""
        found = self.pod_refusals.get(self._task_of(executor_input)[1])
        return "; ".join(found) if found else None

    def _task_of(self, executor_input: dict[str, Any]) -> tuple[str, str]:
        """(run id, task name) from the task folder kfp.local gave the task: <root>/<run>/<task>/."""
        task_dir = os.path.dirname(os.path.abspath(executor_input["outputs"]["outputFile"]))
        run_id = os.path.relpath(task_dir, self.pipeline_root).split(os.sep)[0]
        return run_id, os.path.basename(task_dir)

    def _ensure_root(self, run_id: str) -> None:
        if self._root_started:
            return
        answer = self._call("root_dag", pipeline_name=self.pipeline_name, run_id=run_id,
                            pipeline_root=self.pipeline_root, parameters=self.parameters)
        if not answer.get("ok"):
            raise ContractError(f"root DAG: {answer.get('error')}")
        self._root_started, self.run_id = True, run_id

    def before_task(self, executor_input: dict[str, Any], image: str) -> int:
        """The driver's part: creates the task's execution; returns its MLMD id."""
        run_id, task_name = self._task_of(executor_input)
        self._ensure_root(run_id)
        answer = self._call("create_execution", task_name=task_name, image=image, executor_input=executor_input)
        if not answer.get("ok"):
            raise ContractError(f"driver for {task_name}: {answer.get('error')}")
        return answer["execution_id"]

    def after_task(self, execution_id: int, executor_input: dict[str, Any], succeeded: bool) -> Optional[str]:
        """The launcher's part once the program exited.

        Returns:
            None when the task stands, or the backend's error that fails it.
        """
        output_file = executor_input["outputs"]["outputFile"]
        written = None
        if os.path.exists(output_file):
            with open(output_file, encoding="utf-8") as handle:
                written = json.load(handle)
        answer = self._call("launch", execution_id=execution_id, executor_input=executor_input,
                            executor_output=written, succeeded=succeeded)
        if not answer.get("ok"):
            return answer.get("error")
        if written is not None:
            shutil.copy(output_file, os.path.join(os.path.dirname(output_file), COMPONENT_OUTPUT))
        with open(output_file, "w", encoding="utf-8") as handle:
            json.dump(answer["executor_output"], handle, indent=2)
        return None

    def cached(self, run_id: str, task_name: str, executor_input: dict[str, Any], image: str,
               outputs: dict[str, Any]) -> None:
        """A task of run ``run_id`` served from the cache, published as the driver publishes a cache hit."""
        self._ensure_root(run_id)
        answer = self._call("cached", task_name=task_name, image=image, executor_input=executor_input,
                            cached_outputs=outputs)
        if not answer.get("ok"):
            raise ContractError(f"cache hit of {task_name}: {answer.get('error')}")

    def close(self, succeeded: bool) -> None:
        """Sets the root DAG's final state and stops the writer."""
        try:
            if self._root_started and self._process.poll() is None:
                self._call("finish", succeeded=succeeded)
        finally:
            if self._process.stdin:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
