"""Warm runtimes for local runs: one process per runtime imports what its steps need; each task forks from it.

A task started as a fresh process pays its interpreter and its imports (TensorFlow for
validate_data, Feast for the feature steps: seconds each) before any compute. The first task of a
runtime that declares imports (``PodSettings.preload`` in each step's ``component.py``) starts
that runtime's server in its environment (``WarmPool``): the server runs that task first (it
imports what it needs itself, as a fresh process would), then imports what the runtime's later
tasks of this run declare (none when they were served from the cache or have run), while the run
goes on. Each task then runs in a child forked from it:

- the task's own argv (``python -m components.<step> ...``, run as ``__main__`` by runpy), its
  environment (replaced whole), its working directory, stdin from /dev/null, stdout and stderr
  to a pipe the runner reads (passed over the Unix socket with SCM_RIGHTS), its exit status
  (a signal as the negative signal number, as ``subprocess`` reports it);
- a task that crashes or is killed takes only its child down; the server serves the next one;
- a runtime whose imports fail, or a server that is gone, leaves its tasks to fresh processes,
  and the runner says so.

The servers listen at once and import while the run goes on: a task that arrives before its
runtime's imports are done is served between two of them (it imports the rest itself). kfp.local
stays the orchestrator (its DAG, its cache, its logs). A server serves one task at a time
(kfp.local runs a pipeline's tasks one after another) and forks from its only thread.
Not used for container runs. ``python -m pipelines.local.warm serve --socket PATH --preload a,b``
is the server; it needs the standard library and ``components/processes.py`` only (it runs in every
runtime's environment).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Optional

_REQUEST_LIMIT = 1 << 24
#: How long a new server waits for the task that started it before it begins its imports (seconds).
_FIRST_TASK_WAIT = 2.0


# ----- the server (in the runtime's environment) -----

def _child(request: dict, out_fd: int) -> None:
    """In the forked child: become the task, run it, and exit with its status (never returns)."""
    from components.processes import become_module

    become_module(request["module"], request["argv"], request["env"], request["cwd"], out_fd)


def _exit_with_parent() -> None:
    """Asks Linux to end this server when the runner that started it dies (prctl PR_SET_PDEATHSIG), killed or not."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the runner's finally block stops it


def _serve_one(listener: socket.socket) -> Optional[dict]:
    """Accepts one request and runs it in a forked child, waiting for it; the request, None on a stop request."""
    connection, _ = listener.accept()
    with connection:
        try:
            message, fds, _, _ = socket.recv_fds(connection, _REQUEST_LIMIT, 1)
            request = json.loads(message)
            if request.get("op") == "stop":
                return None
            if request.get("op") == "import":  # no task: imports for the runtime's later tasks, now
                return {"op": "import", "then_import": request.get("modules", [])}
            [out_fd] = fds
        except (OSError, ValueError) as error:
            print(f"[warm] bad request: {error}", file=sys.stderr, flush=True)
            return {}
        pid = os.fork()
        if pid == 0:
            listener.close()
            connection.close()
            _child(request, out_fd)
        os.close(out_fd)
        _, status = os.waitpid(pid, 0)
        try:
            connection.sendall(json.dumps({"exit_code": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
        except OSError:
            pass
    return request


def serve(socket_path: str, preload: list[str]) -> int:
    """Listens at once and runs each task a client sends in a child; between tasks, imports what later ones need.

    What to import: ``preload``, and after each task the modules its request names in
    ``then_import`` (what the run's later tasks of this runtime declare), one module at a time.
    A task that arrives while imports are still going is served between two of them: it forks
    from what is imported so far and imports the rest itself, as a fresh process would. A module
    that fails to import stops the server (exit 3, the reason on stderr): its clients fall back to
    fresh processes.
    """
    import importlib
    import selectors

    _exit_with_parent()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(8)
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    started = time.perf_counter()
    queue, imported = [], []

    def take(request: Optional[dict]) -> bool:
        if request is None:
            return False
        queue.extend(m for m in request.get("then_import", []) if m not in queue and m not in imported)
        if request.get("op") == "import" and not queue:  # all imported already: say so at once
            print(json.dumps({"preloaded": imported, "seconds": round(time.perf_counter() - started, 3)}),
                  file=sys.stderr, flush=True)
        return True

    with selectors.DefaultSelector() as pending:
        pending.register(listener, selectors.EVENT_READ)
        # The task that started this server comes first, before any import: it imports what it needs
        # itself, as a fresh process would (a step with nothing new to do needs nothing heavy); the
        # runtime's later tasks find the imports done.
        # A server started ahead of its tasks (``preload`` given) imports at once.
        if not preload and pending.select(_FIRST_TASK_WAIT) and not take(_serve_one(listener)):
            return 0
        queue.extend(m for m in preload if m not in queue)
        while True:
            if not queue:
                if not take(_serve_one(listener)):
                    return 0
                continue
            if pending.select(0):
                if not take(_serve_one(listener)):
                    return 0
                continue
            module = queue.pop(0)
            try:
                importlib.import_module(module)
            except BaseException as error:  # noqa: BLE001 - any failure means: no warm runtime here
                print(json.dumps({"preload_failed": f"import {module}: {type(error).__name__}: {error}"}),
                      file=sys.stderr, flush=True)
                listener.close()
                os.unlink(socket_path)
                return 3
            imported.append(module)
            if not queue:
                print(json.dumps({"preloaded": imported, "seconds": round(time.perf_counter() - started, 3)}),
                      file=sys.stderr, flush=True)


# ----- the client (in the runner) -----

class WarmRuntime:
    """A runtime's server, as the runner sees it."""

    def __init__(self, runtime: str, python: str, preload: list[str], socket_path: str, env: dict[str, str]):
        """Starts the server (returns at once; ``wait_ready`` waits for its imports)."""
        self.runtime, self.preload, self.socket_path = runtime, preload, socket_path
        self.error: Optional[str] = None
        # The server's own warnings (its imports') go to a file beside the socket, never into a pipe nobody reads.
        self.log_path = socket_path[:-len(".sock")] + ".log" if socket_path.endswith(".sock") else socket_path + ".log"
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen([python, "-m", "pipelines.local.warm", "serve", "--socket", socket_path,
                                             "--preload", ",".join(preload)],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                            text=True, env=env)

    def wait_ready(self, timeout: float = 300.0) -> bool:
        """Whether the server imported its modules and listens (else ``error`` says why)."""
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                self.error = f"no answer in {timeout:.0f} s"
                self.stop()
                return False
        line = self.process.stdout.readline()
        try:
            answer = json.loads(line)
        except ValueError:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                answer = {"ready": False, "error": (line + log.read())[-1500:].strip()
                          or f"exited with code {self.process.wait()}"}
        if not answer.get("ready"):
            self.error = answer.get("error")
            self.stop()
            return False
        return True

    def failure(self) -> Optional[str]:
        """Why the server stopped (a module it could not import), from its log; None when it did not say."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                for line in reversed(log.read().splitlines()):
                    if line.startswith('{"preload_failed"'):
                        return json.loads(line)["preload_failed"]
        except (OSError, ValueError):
            return None
        return None

    def preloaded(self, after: int = 0) -> Optional[dict]:
        """{"preloaded": modules, "seconds": ...} when the server last had nothing left to import, else None.

        ``after``: only a report beyond the first ``after`` (``preload_reports``), i.e. of imports asked since.
        """
        reports = self._preload_lines()
        return json.loads(reports[-1]) if len(reports) > after else None

    def preload_reports(self) -> int:
        """How many times the server reported its imports done so far."""
        return len(self._preload_lines())

    def _preload_lines(self) -> list[str]:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                return [line for line in log.read().splitlines() if line.startswith('{"preloaded"')]
        except OSError:
            return []

    def import_now(self, modules: list[str]) -> bool:
        """Asks the server to import ``modules`` with no task (once it is free, between tasks); whether it was asked.

        Its next import report (``preloaded(after=...)``) says they are done.
        """
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.connect(self.socket_path)
                connection.sendall(json.dumps({"op": "import", "modules": modules}).encode())
            return True
        except OSError:
            return False

    @property
    def alive(self) -> bool:
        """The server runs and took its imports."""
        return self.error is None and self.process.poll() is None

    def run(self, module: str, argv: list[str], env: dict[str, str], cwd: str, emit: Callable[[str], None],
            then_import: Optional[list[str]] = None) -> int:
        """Runs ``python -m module argv`` in a child of the server; streams its output to ``emit``; its exit code.

        ``then_import``: modules the server imports after this task, for the later ones.

        Raises:
            OSError: The server cannot be reached (the caller falls back to a fresh process).
        """
        read_fd, write_fd = os.pipe()
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(self.socket_path)
            request = {"module": module, "argv": argv, "env": env, "cwd": cwd, "then_import": then_import or []}
            socket.send_fds(connection, [json.dumps(request).encode()], [write_fd])
        except OSError as error:
            os.close(read_fd)
            connection.close()
            self.error = self.failure() or str(error)
            raise OSError(self.error) from error
        finally:
            os.close(write_fd)
        with open(read_fd, encoding="utf-8", errors="backslashreplace") as output:
            for line in output:  # until the child (the only writer left) exits
                emit(line)
        with connection:
            answer = connection.makefile().readline()
        if not answer:
            raise OSError(f"the {self.runtime} runtime's server closed the connection without an exit code")
        return int(json.loads(answer)["exit_code"])

    def stop(self) -> None:
        """Stops the server."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)


class WarmPool:
    """The warm servers of a run, each started when the run is known to need it.

    A run whose tasks are all served from kfp.local's cache starts none (its imports would only
    compete with the run for the cores). A runtime's server starts with the first task of that
    runtime that runs, or ahead of it: a task that writes artifacts makes every task downstream
    of it run (their inputs are new, so kfp.local's cache cannot serve them), and the servers of
    their runtimes start then and import what those tasks declare while the run goes on (the
    feature runtime imports Feast while extract runs). Those ahead of their tasks import one
    runtime at a time, in the order the run needs them (the runtime of the earliest task first):
    on two cores, four runtimes importing at once beside a task made each the last to be ready,
    Feast's import (3.4 s alone) included, which join_features then waited for; a server whose
    first task came early (resolve-baseline's) waits its turn for its later imports too. After
    each task a server imports what the run's later tasks of its runtime declare: none once they
    have run or were served from the cache (a rerun after a deployment runs resolve-baseline
    alone of the data runtime: importing TensorFlow then would only slow the evaluation running
    beside it).
    """

    def __init__(self, preloads: dict[str, list[str]], python_of: Callable[[str], str], folder: str,
                 env: dict[str, str], log: Callable[[str], None] = print,
                 plan: Optional[dict[str, tuple[str, tuple[str, ...]]]] = None,
                 passed_over: Callable[[], Iterable[str]] = tuple,
                 downstream: Optional[dict[str, set[str]]] = None):
        """Creates the pool; no server starts yet.

        Args:
            preloads: Runtime -> the modules its steps import.
            python_of: Runtime -> its interpreter.
            folder: Where the sockets go (a short path: Unix socket names are limited to 107 bytes).
            env: The servers' environment (``PYTHONPATH`` making the repository importable).
            log: Where starts and failures are reported.
            plan: The run's tasks: name -> (runtime, the modules it declares). Without it a server
                imports everything its runtime's steps declare.
            passed_over: The names of the tasks that will not run (so far: served from the cache).
            downstream: Per task that writes artifacts, the tasks downstream of it (they will run
                when it runs). None: servers start with their first task only.
        """
        self.preloads, self.python_of, self.folder, self.env, self.log = preloads, python_of, folder, env, log
        self.plan, self.passed_over, self.downstream = plan, passed_over, downstream or {}
        self.servers: dict[str, WarmRuntime] = {}
        self._checked: set[str] = set()
        self._started_tasks: set[str] = set()
        self._lock = threading.Lock()
        #: Runtimes to start ahead of their tasks, earliest needed first: (plan position, runtime, modules, why).
        #: A runtime whose server runs already (its first task came) waits here with why = "" for its later
        #: imports, which it is sent (``import_now``) when its turn comes.
        self._queue: list[tuple[int, str, list[str], str]] = []
        self._ahead: Optional[WarmRuntime] = None  # the server importing ahead of its tasks now
        self._ahead_reports = 0  # its import reports when it began them: a later one says they are done
        self._ahead_until_task = False  # started ahead of its tasks: its first task's arrival also ends its turn
        self._advancer: Optional[threading.Thread] = None
        self._stopping = threading.Event()

    def _still_to_run(self) -> set[str]:
        return set(self.plan or {}) - self._started_tasks - set(self.passed_over())

    def later_imports(self, runtime: str, task: Optional[str] = None) -> list[str]:
        """What the runtime's tasks still to come declare, ``task`` now starting (every module without a plan)."""
        if self.plan is None:
            return list(self.preloads.get(runtime, []))
        with self._lock:
            if task:
                self._started_tasks.add(task)
            pending = self._still_to_run()
            modules = _modules(self.plan, pending, runtime)
            # Another runtime imports ahead of a task the run needs sooner: these wait for their turn.
            mine = self._first_position(runtime, pending)
            if modules and self._ahead_busy() and self._ahead.runtime != runtime and \
                    self._first_position(self._ahead.runtime, pending) < mine:
                self._queue = [queued for queued in self._queue if queued[1] != runtime]
                self._queue.append((mine, runtime, modules, ""))
                self._queue.sort()
                self._advance()  # nothing yet: makes sure the queue is watched
                return []
            self._queue = [queued for queued in self._queue if queued[1] != runtime or queued[3]]
        return modules

    def _ahead_busy(self) -> bool:
        """Whether the server importing ahead of its tasks still does (the lock held)."""
        ahead = self._ahead
        return ahead is not None and ahead.alive and not (self._ahead_until_task and ahead.runtime in self._checked) \
            and ahead.preloaded(after=self._ahead_reports) is None

    def _first_position(self, runtime: str, tasks: Iterable[str]) -> int:
        """The plan position of the first of ``tasks`` that is of ``runtime`` (the plan's length: none)."""
        tasks = set(tasks)
        return min((index for index, name in enumerate(self.plan) if name in tasks and self.plan[name][0] == runtime),
                   default=len(self.plan))

    def task_starts(self, task: str) -> bool:
        """Called as each task starts: when it writes artifacts, starts the servers its downstream tasks fork from.

        They start one at a time, earliest needed first (``_advance``).

        Returns:
            Whether the task should run as a fresh process: its own runtime's server is to start for the
            tasks downstream of it, and import for them (extract runs beside TensorFlow's import).
        """
        if self.plan is None or task not in self.downstream:
            return False
        own = self.plan[task][0] if task in self.plan else None
        fresh = False
        with self._lock:
            self._started_tasks.add(task)
            coming = self.downstream[task] & self._still_to_run()
            queued = {runtime for _, runtime, _, _ in self._queue}
            for runtime in sorted({self.plan[name][0] for name in coming} - set(self.servers) - queued):
                modules = _modules(self.plan, coming, runtime)
                if modules and runtime in self.preloads:
                    self._queue.append((self._first_position(runtime, coming), runtime, modules, task))
                    fresh = fresh or runtime == own
            self._queue.sort()
            self._advance()
        return fresh

    def _advance(self) -> None:
        """Starts the next queued server once the one importing ahead of its tasks is done (the lock held).

        Done: its imports are, or its first task came (what it still imports is needed now, not ahead).
        """
        while self._queue and not self._stopping.is_set() and not self._ahead_busy():
            _, runtime, modules, task = self._queue.pop(0)
            server = self.servers.get(runtime)
            if not task:  # a running server's later imports
                if server is not None and server.alive:
                    reports = server.preload_reports()
                    if server.import_now(modules):
                        self._ahead, self._ahead_reports, self._ahead_until_task = server, reports, False
                continue
            if server is not None:  # its first task came and started it
                continue
            self.servers[runtime] = self._ahead = self._start(runtime, modules)
            self._ahead_reports, self._ahead_until_task = 0, True
            self.log(f"[warm] {task} runs, so its downstream tasks will: the {runtime} runtime's server "
                     f"starts and imports {', '.join(modules)}")
        if self._queue and self._advancer is None:
            self._advancer = threading.Thread(target=self._advance_when_ready, daemon=True, name="warm-advance")
            self._advancer.start()

    def _advance_when_ready(self) -> None:
        # Lives until the pool stops: a server dies with the thread that started it (_exit_with_parent's
        # PR_SET_PDEATHSIG follows the thread, not the process).
        while not self._stopping.wait(0.05):
            with self._lock:
                self._advance()

    def _start(self, runtime: str, preload: list[str]) -> WarmRuntime:
        os.makedirs(self.folder, exist_ok=True)
        from components.images import runtime_env  # the runner's side only: the server needs the standard library

        return WarmRuntime(runtime, self.python_of(runtime), preload, os.path.join(self.folder, f"{runtime}.sock"),
                           {**self.env, **runtime_env(runtime)})

    def get(self, runtime: str) -> Optional[WarmRuntime]:
        """The runtime's server, started on first use; None for a runtime with nothing to import."""
        if runtime not in self.preloads:
            return None
        with self._lock:
            if runtime not in self.servers:
                # Its task is here: it starts now, queued or not (the task first, then the imports).
                self._queue = [queued for queued in self._queue if queued[1] != runtime]
                self.servers[runtime] = self._start(runtime, [])
            server = self.servers[runtime]
            if runtime not in self._checked:
                self._checked.add(runtime)
                if server.wait_ready():
                    self.log(f"[warm] the {runtime} runtime's server is up: its later tasks fork from it")
                else:
                    self.log(f"[warm] the {runtime} runtime's server did not start ({server.error}): "
                             "its tasks run as fresh processes")
            return server

    def stop(self) -> None:
        """Stops every server and removes the sockets' folder."""
        import shutil

        self._stopping.set()
        if self._advancer is not None:
            self._advancer.join(5)
        for server in self.servers.values():
            server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _modules(plan: dict[str, tuple[str, tuple[str, ...]]], tasks: Iterable[str], runtime: str) -> list[str]:
    """The modules ``tasks`` of ``runtime`` declare, each once, in the plan's order."""
    modules: list[str] = []
    for name, (task_runtime, declared) in plan.items():
        if task_runtime == runtime and name in tasks:
            modules += [m for m in declared if m not in modules]
    return modules


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: the server."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.local.warm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--preload", default="", help="comma-separated modules to import before serving")
    args = parser.parse_args(argv)
    return serve(args.socket, [m for m in args.preload.split(",") if m])


if __name__ == "__main__":
    sys.exit(main())
