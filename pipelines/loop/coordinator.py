"""At most one pipeline run at a time; triggers that fire meanwhile are coalesced, never lost.

Fired triggers go to a pending file. Whoever holds the run lock (a file lock,
so it holds across threads and processes) drains the pending file and starts
one run for everything in it; triggers that arrive during that run wait and
start the next run together. A run that cannot be started (the launcher
raises) is retried with backoff, saying so; after the last attempt its
triggers go back to the pending file for the next check.

Everything that happens is appended to a journal (JSON lines).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from typing import Any, Optional

from pipelines.loop.triggers import Trigger

PENDING = "pending.jsonl"
JOURNAL = "journal.jsonl"


class StartError(RuntimeError):
    """The run could not be started (retried); distinct from a run that started and failed."""


class RunCoordinator:
    """Single-flight runs of one pipeline, with coalescing and retries."""

    def __init__(self, state_dir: str, launch: Callable[[list[Trigger]], dict[str, Any]],
                 attempts: int = 3, backoff_seconds: float = 5.0, log: Callable[[str], None] = print,
                 sleep: Callable[[float], None] = time.sleep):
        """Creates a coordinator.

        Args:
            state_dir: Folder of the lock, pending and journal files.
            launch: Starts one run for a batch of triggers and returns its outcome;
                raises ``StartError`` (or ``OSError``) when it could not start it.
            attempts: Attempts to start a run before giving up until the next check.
            backoff_seconds: Wait before the second attempt, doubled after each failure.
            log: Where progress lines go.
            sleep: How to wait (tests pass a fast one).
        """
        os.makedirs(state_dir, exist_ok=True)
        self.state_dir = state_dir
        self.launch = launch
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.log = log
        self.sleep = sleep

    def _path(self, name: str) -> str:
        return os.path.join(self.state_dir, name)

    @contextlib.contextmanager
    def _locked(self, name: str, blocking: bool = True):
        with open(self._path(name), "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def journal(self, event: str, **details: Any) -> None:
        """Appends one line to the journal."""
        entry = {"event": event, "logged_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **details}
        with self._locked("journal.lock"), open(self._path(JOURNAL), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")

    def read_journal(self) -> list[dict[str, Any]]:
        """Every journal entry, oldest first."""
        if not os.path.exists(self._path(JOURNAL)):
            return []
        with open(self._path(JOURNAL), encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def fire(self, trigger: Trigger) -> None:
        """Records a trigger as pending (the next ``run_pending`` starts a run for it)."""
        with self._locked("pending.lock"), open(self._path(PENDING), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(trigger.as_dict()) + "\n")
        self.journal("fired", **trigger.as_dict())
        self.log(f"trigger {trigger.kind}: {trigger.reason}")

    def _take_pending(self) -> list[Trigger]:
        with self._locked("pending.lock"):
            if not os.path.exists(self._path(PENDING)):
                return []
            with open(self._path(PENDING), encoding="utf-8") as handle:
                batch = [Trigger(**json.loads(line)) for line in handle if line.strip()]
            os.remove(self._path(PENDING))
        return batch

    def _put_back(self, batch: list[Trigger]) -> None:
        with self._locked("pending.lock"), open(self._path(PENDING), "a", encoding="utf-8") as handle:
            for trigger in batch:
                handle.write(json.dumps(trigger.as_dict()) + "\n")

    def has_pending(self) -> bool:
        """Tells whether triggers wait for a run."""
        with self._locked("pending.lock"):
            return os.path.exists(self._path(PENDING)) and os.path.getsize(self._path(PENDING)) > 0

    def run_pending(self) -> list[dict[str, Any]]:
        """Runs the pipeline for the pending triggers, one run at a time, until none are pending.

        Returns at once when another thread or process holds the run: that one
        picks the pending triggers up when its run ends.

        Returns:
            The outcomes of the runs this call started.
        """
        outcomes: list[dict[str, Any]] = []
        while True:
            with self._locked("run.lock", blocking=False) as acquired:
                if not acquired:
                    if self.has_pending():
                        self.log("a run is in progress: the new trigger(s) will start the next run")
                        self.journal("coalesced")
                    return outcomes
                while True:
                    batch = self._take_pending()
                    if not batch:
                        break
                    outcome = self._start_with_retries(batch)
                    if outcome is None:
                        return outcomes
                    outcomes.append(outcome)
            # A trigger fired after the last drain but before the release found the lock held: look again.
            if not self.has_pending():
                return outcomes

    def _start_with_retries(self, batch: list[Trigger]) -> Optional[dict[str, Any]]:
        kinds = sorted({t.kind for t in batch})
        wait = self.backoff_seconds
        for attempt in range(1, self.attempts + 1):
            started = time.time()
            self.journal("run_started", triggers=[t.as_dict() for t in batch], attempt=attempt)
            try:
                outcome = self.launch(batch)
            except (StartError, OSError) as error:
                self.journal("start_failed", triggers=[t.as_dict() for t in batch], attempt=attempt,
                             error=str(error))
                if attempt == self.attempts:
                    self.log(f"could not start a run for {'+'.join(kinds)} after {attempt} attempts ({error}); "
                             "the triggers stay pending for the next check")
                    self._put_back(batch)
                    return None
                self.log(f"could not start a run for {'+'.join(kinds)} ({error}); "
                         f"retry {attempt + 1} of {self.attempts} in {wait:.0f} s")
                self.sleep(wait)
                wait *= 2
                continue
            outcome = {**outcome, "triggers": [t.as_dict() for t in batch],
                       "seconds": round(time.time() - started, 1)}
            self.journal("run_finished", **outcome)
            return outcome
        return None
