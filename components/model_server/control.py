"""Start, stop and query a local model server process (used by infra_validate, deploy and make).

The server runs detached in its own session with its output in a log file, so
it outlives the pipeline task that started it. Its state (pid, port, version)
is kept in ``<state_dir>/server.json``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Optional

from components.model_server.payload_logger import PROBE_HEADER
from components.paths import REPO_ROOT
from components.processes import (  # noqa: F401 - free_port is part of this API
    ForkedProcess,
    free_port,
    pid_alive,
    start_ticks,
    stop_process,
)

STATE_FILE = "server.json"


def port_is_free(port: int) -> bool:
    """Tells whether a TCP port on loopback can be bound now (as the server binds it)."""
    with socket.socket() as sock:
        # Like uvicorn: connections of a stopped server lingering in TIME_WAIT do not block the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def http_json(method: str, url: str, body: Optional[dict[str, Any]] = None, timeout: float = 10.0,
              headers: Optional[dict[str, str]] = None):
    """Sends a JSON request; returns ``(status, parsed body or text)``."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_ready(url: str, model_name: str, timeout: float, process: Optional[subprocess.Popen] = None) -> None:
    """Waits until ``GET /v1/models/<name>`` says ready.

    Raises:
        RuntimeError: The process exited, or the model was not ready within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"model server exited with code {process.returncode} before it was ready")
        try:
            status, body = http_json("GET", f"{url}/v1/models/{model_name}", timeout=2)
            if status == 200 and isinstance(body, dict) and body.get("ready"):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"model server at {url} was not ready within {timeout:.0f} s")


def start_process(source: list[str], model_name: str, port: int, log_path: str,
                  logger_url: str = "", extra_args: Sequence[str] = (), launcher: Sequence[str] = (),
                  feature_server_url: str = "", fork: bool = False):
    """Starts a model server process in its own session, its output going to ``log_path``.

    Args:
        source: ``["--model-dir", DIR]`` or ``["--registry", URI]``.
        model_name: Name of the model in URLs.
        port: HTTP port on loopback.
        log_path: File receiving the server's output.
        logger_url: Monitor receiving every request and response ("" for none).
        feature_server_url: Feast's feature server for the features requests leave out ("" for none).
        extra_args: More ``serve`` options (``--workers 2``, ...).
        launcher: A command the server runs under (``taskset -c 1``, ...).
        fork: Fork this process into the server instead of starting an interpreter, when it has
            imported the server already (a step forked from its warm runtime, pipelines/local/warm.py):
            the server then skips kserve's and scikit-learn's imports (about a second). Only a
            process that runs no threads may fork: a pipeline step's, not a test runner's.

    Returns:
        The process: ``subprocess.Popen``, or a ``processes.ForkedProcess`` with the same ``pid``,
        ``poll``, ``wait`` and ``returncode``.
    """
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "PYTHONUNBUFFERED": "1"}
    argv = ["serve", *source, "--name", model_name, "--port", str(port),
            *(["--logger-url", logger_url] if logger_url else []),
            *(["--feature-server-url", feature_server_url] if feature_server_url else []), *extra_args]
    if fork and not launcher and "components.model_server.server" in sys.modules:
        return ForkedProcess("components.model_server", argv, log_path, env, REPO_ROOT)
    with open(log_path, "a", encoding="utf-8") as log:
        return subprocess.Popen([*launcher, sys.executable, "-m", "components.model_server", *argv],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=REPO_ROOT, start_new_session=True)


def read_state(state_dir: str) -> Optional[dict[str, Any]]:
    """The recorded state of the local server, or None."""
    path = os.path.join(state_dir, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def is_alive(state: Optional[dict[str, Any]]) -> bool:
    """Tells whether the process of a recorded state still runs."""
    if not state:
        return False
    return pid_alive(state["pid"], state.get("started"))


def stop(state_dir: str) -> Optional[dict[str, Any]]:
    """Stops the local server recorded in ``state_dir`` (if running); returns its last state."""
    state = read_state(state_dir)
    if state and is_alive(state):
        stop_process(state["pid"], started=state.get("started"))
    if state:
        os.remove(os.path.join(state_dir, STATE_FILE))
    return state


def served_version(url: str, model_name: str, probe: str = "version") -> Optional[str]:
    """Asks a running server which model version answers now (None when it does not answer).

    ``probe="candidate"``: the version answering an experiment's candidate share (production when none runs).
    """
    try:
        status, metadata = http_json("GET", f"{url}/v2/models/{model_name}", timeout=5)
        if status != 200:
            return None
        request = {"instances": [{tensor["name"]: None for tensor in metadata["inputs"]}]}
        status, body = http_json("POST", f"{url}/v1/models/{model_name}:predict", request, timeout=5,
                                 headers={PROBE_HEADER: probe})
    except (urllib.error.URLError, ConnectionError, OSError, KeyError, TypeError):
        return None
    return body.get("model_version") if status == 200 and isinstance(body, dict) else None


def wait_version(url: str, model_name: str, version: str, timeout: float = 60.0, probe: str = "version") -> None:
    """Waits until the server at ``url`` answers with ``version`` (``probe``: see ``served_version``).

    Raises:
        RuntimeError: It did not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served_version(url, model_name, probe) == version:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the model server at {url} did not switch to {model_name} {version} within {timeout:.0f} s")


def status(state_dir: str) -> dict[str, Any]:
    """The local server's recorded state, whether it runs, and the version it answers with."""
    state = read_state(state_dir)
    if not state:
        return {"running": False, "state_dir": state_dir}
    alive = is_alive(state)
    return {**state, "running": alive,
            "serving_version": served_version(state["url"], state["model_name"]) if alive else None}


def ensure_serving(state_dir: str, registry_uri: str, model_name: str, port: int,
                   timeout: float = 60.0, logger_url: str = "", feature_server_url: str = "",
                   fork: bool = False) -> dict[str, Any]:
    """Makes the local server serve the registry's current version of a model.

    A running server that follows the same registry switches by itself, without
    a restart and without dropping a request: this waits until it answers with
    the new version. Otherwise a server is started, following the registry.

    A server logging to another monitor (``logger_url``) or asking another feature server
    (``feature_server_url``) is restarted. ``fork``: see ``start_process``.

    Returns:
        The server's state: pid, port, url, model name, version, log path.
    """
    from components import registry

    pointer = registry.current(registry_uri, model_name)
    if pointer is None:
        raise RuntimeError(f"registry {registry_uri} has no current version of {model_name} to serve")
    state = read_state(state_dir)
    registry_abs = os.path.abspath(registry_uri)
    if (is_alive(state) and state.get("registry") == registry_abs and state.get("model_name") == model_name
            and state.get("logger_url", "") == logger_url
            and state.get("feature_server_url", "") == feature_server_url):
        wait_version(state["url"], model_name, pointer["version"], timeout)
    else:
        stop(state_dir)
        if not port_is_free(port):
            raise RuntimeError(f"port {port} on 127.0.0.1 is taken by another process; "
                               "choose another with the serving_port parameter")
        os.makedirs(state_dir, exist_ok=True)
        log_path = os.path.join(state_dir, "server.log")
        process = start_process(["--registry", registry_abs], model_name, port, log_path, logger_url,
                                feature_server_url=feature_server_url, fork=fork)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, model_name, timeout, process)
            wait_version(url, model_name, pointer["version"], timeout)
        except RuntimeError:
            stop_process(process.pid)
            raise
        state = {"pid": process.pid, "started": start_ticks(process.pid), "port": port, "url": url,
                 "model_name": model_name,
                 "registry": registry_abs, "log": log_path, "logger_url": logger_url,
                 "feature_server_url": feature_server_url,
                 "predict_url": f"{url}/v1/models/{model_name}:predict",
                 "infer_url": f"{url}/v2/models/{model_name}/infer"}
    state["version"] = pointer["version"]
    state["model_dir"] = pointer["model_dir"]
    write_state(state_dir, state)
    return state


def write_state(state_dir: str, state: dict[str, Any]) -> None:
    """Records the local server's state in ``<state_dir>/server.json``."""
    with open(os.path.join(state_dir, STATE_FILE), "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
