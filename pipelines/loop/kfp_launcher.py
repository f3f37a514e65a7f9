"""The loop's launcher on a cluster: each batch of triggers becomes one Kubeflow Pipelines run.

``make watch`` runs pipelines with kfp.local; in a cluster the watcher (manifests/base/
watcher.yaml) uses this launcher instead. It creates a run of the uploaded pipeline version
through ``kfp.Client`` with the window's spans and the trigger reason as run parameters (the
reason lands in ML Metadata with the run), then waits for it to finish. The run id is kept in
``<state>/in_flight.json`` until the run ends, so a watcher that restarts waits for that run
before it starts another: single flight holds across restarts (the coordinator's pending
triggers live in the same state folder, on a volume).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, Optional

from components.spans import split_window, window_for
from pipelines.ct.spec import PIPELINE_NAME
from pipelines.loop.coordinator import StartError
from pipelines.loop.triggers import Trigger, trigger_label

IN_FLIGHT = "in_flight.json"
FINISHED_STATES = {"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED", "CANCELING"}


class KfpLauncher:
    """Starts a KFP run for a batch of triggers and waits for it (kfp.Client against the KFP API)."""

    def __init__(self, client, state_dir: str, version_name: str, spans: Callable[[], list[str]],
                 params: Optional[dict[str, Any]] = None, train_months: int = 3,
                 experiment: str = "continuous-training", namespace: Optional[str] = None,
                 service_account: Optional[str] = None, pipeline_name: str = PIPELINE_NAME,
                 timeout_seconds: float = 6 * 3600, poll_seconds: float = 15,
                 sleep: Callable[[float], None] = time.sleep):
        """Creates a launcher.

        Args:
            client: A ``kfp.Client``.
            state_dir: Folder kept across restarts (a PersistentVolumeClaim in the cluster).
            version_name: The pipeline version to run (``make deploy-pipeline`` names it by git sha).
            spans: Lists the span ids in the source.
            params: Run parameters besides the window and the trigger (registry, serving target, ...).
            train_months: Training spans per run (the newest span is the test span).
            experiment: Experiment the runs belong to (created when missing).
            namespace: Profile namespace on the multi-user platform; None on standalone KFP.
            service_account: Service account of the runs' pods (None: the server's default).
            pipeline_name: The uploaded pipeline's name.
            timeout_seconds: How long a run may take before the launcher stops waiting.
            poll_seconds: Interval between status reads.
            sleep: Waits between polls (tests pass a no-op).
        """
        self.client = client
        self.state_dir = state_dir
        self.version_name = version_name
        self.spans = spans
        self.params = params or {}
        self.train_months = train_months
        self.experiment = experiment
        self.namespace = namespace or None
        self.service_account = service_account or None
        self.pipeline_name = pipeline_name
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        os.makedirs(state_dir, exist_ok=True)

    def _in_flight_path(self) -> str:
        return os.path.join(self.state_dir, IN_FLIGHT)

    def _remember(self, run: Optional[dict[str, Any]]) -> None:
        if run is None:
            if os.path.exists(self._in_flight_path()):
                os.remove(self._in_flight_path())
            return
        temporary = self._in_flight_path() + ".tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(run, handle)
        os.replace(temporary, self._in_flight_path())

    def in_flight(self) -> Optional[dict[str, Any]]:
        """The run this launcher started and has not seen finish (also from before a restart), or None."""
        if not os.path.exists(self._in_flight_path()):
            return None
        with open(self._in_flight_path(), encoding="utf-8") as handle:
            return json.load(handle)

    def _wait(self, run_id: str) -> str:
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            state = str(self.client.get_run(run_id).state or "").upper()
            if state in FINISHED_STATES:
                return state
            if time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} still {state or 'pending'} after {self.timeout_seconds:.0f} s")
            self.sleep(self.poll_seconds)

    def _ids(self) -> tuple[str, str, str]:
        pipeline_id = self.client.get_pipeline_id(self.pipeline_name)
        if pipeline_id is None:
            raise StartError(f"pipeline {self.pipeline_name!r} is not on the KFP server: run make deploy-pipeline")
        versions, token = {}, ""
        while True:
            page = self.client.list_pipeline_versions(pipeline_id, page_token=token, page_size=100)
            versions.update({v.display_name: v.pipeline_version_id for v in page.pipeline_versions or []})
            token = page.next_page_token
            if not token:
                break
        if self.version_name not in versions:
            raise StartError(f"pipeline {self.pipeline_name!r} has no version {self.version_name!r}")
        try:
            experiment_id = self.client.get_experiment(experiment_name=self.experiment,
                                                       namespace=self.namespace).experiment_id
        except ValueError:
            experiment_id = self.client.create_experiment(self.experiment, namespace=self.namespace).experiment_id
        return pipeline_id, versions[self.version_name], experiment_id

    def __call__(self, batch: list[Trigger]) -> dict[str, Any]:
        """Runs the pipeline once for the batch; raises ``StartError`` when the run could not be created."""
        from kfp_server_api import ApiException

        previous = self.in_flight()
        if previous is not None:
            # Started before a restart: single flight means waiting for it first.
            try:
                state = self._wait(previous["run_id"])
            except ApiException as error:
                raise StartError(f"could not read run {previous['run_id']}: {error.status} {error.reason}") from error
            self._remember(None)
            previous_outcome = {**previous, "state": state}
        else:
            previous_outcome = None
        window = window_for(self.spans(), self.train_months)
        if window is None:
            return {"skipped": "fewer than two spans in the source: nothing to train and test on",
                    "resumed": previous_outcome}
        train_spans, last = split_window(window)
        params = {**self.params, "train_spans": train_spans, "test_span": last, "trigger": trigger_label(batch),
                  "git_sha": self.version_name}
        try:
            pipeline_id, version_id, experiment_id = self._ids()
            run = self.client.run_pipeline(experiment_id, f"{self.pipeline_name} {window} ({params['trigger']})",
                                           params=params, pipeline_id=pipeline_id, version_id=version_id,
                                           service_account=self.service_account)
        except ApiException as error:
            raise StartError(f"the KFP API refused the run: {error.status} {error.reason} "
                             f"{(error.body or '').strip()[:300]}") from error
        except OSError as error:
            raise StartError(f"the KFP API could not be reached: {error}") from error
        self._remember({"run_id": run.run_id, "window": window, "trigger": params["trigger"]})
        state = self._wait(run.run_id)
        self._remember(None)
        return {"run_id": run.run_id, "window": window, "test_span": last, "state": state,
                "succeeded": state == "SUCCEEDED", "exit_code": 0 if state == "SUCCEEDED" else 1,
                "resumed": previous_outcome}

