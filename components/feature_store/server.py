"""The local feature server: Feast's own (``feast serve``), started in the background on demand.

On a cluster it is a Deployment (manifests/components/feature-store); locally the
materialization step makes sure one answers on the URL the model server asks, as deploy makes
sure the model server runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any
from urllib.parse import urlparse

from components.paths import REPO_ROOT
from components.processes import ForkedProcess, pid_alive, start_ticks, stop_process

STATE_FILE = "server.json"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def read_state(repo: str) -> dict[str, Any]:
    """The recorded state of the local feature server of a repository ({} when none)."""
    try:
        with open(os.path.join(repo, STATE_FILE), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def serve_options(host: str, port: int) -> list[str]:
    """Options of ``feast serve`` here and in the cluster's Deployment (a test keeps them equal).

    ``--max-requests 0``: Feast's default (1000, feast/cli/serve.py) makes gunicorn restart its
    worker every thousand requests; with Feast's import taking seconds, every lookup in that
    window failed (measured: one request in 2,000 lost by the benchmark).
    """
    return ["-h", host, "-p", str(port), "--max-requests", "0", "--no-access-log"]


def ensure_serving(repo: str, url: str, timeout: float = 60.0) -> dict[str, Any]:
    """Makes Feast's feature server answer on ``url`` (loopback) for the repository.

    ``start_serving`` then ``wait_serving``; see them.

    Raises:
        RuntimeError: The URL is not a loopback http URL, or the server does not come up.
    """
    return wait_serving(start_serving(repo, url), timeout)


def start_serving(repo: str, url: str, fork: bool = False) -> dict[str, Any]:
    """Starts Feast's feature server on ``url`` (loopback) for the repository, unless it answers there; returns at once.

    A server already answering there is kept (it reads the online store on every request, so
    new materializations need no restart); otherwise one is started in its own session. The
    caller may go on (materialize, say) while it imports Feast, then ``wait_serving``. ``fork``:
    fork this process into ``feast serve`` when it has Feast imported (the materialize step forked
    from its warm runtime): the server skips Feast's import, seconds (``processes.ForkedProcess``;
    only from a process with no other thread).

    Raises:
        RuntimeError: The URL is not a loopback http URL, or another server answers there.
    """
    parsed = urlparse(url)
    if parsed.scheme != "http" or parsed.hostname not in ("127.0.0.1", "localhost") or not parsed.port:
        raise RuntimeError(f"a local feature server needs an http://127.0.0.1:PORT URL, got {url!r}")
    repo = os.path.abspath(repo)
    state = read_state(repo)
    if _healthy(url) and state.get("url") == url and pid_alive(state.get("pid", -1), state.get("started")):
        return {**state, "started": False}
    if _healthy(url):
        raise RuntimeError(f"{url} answers, but not as this repository's feature server ({repo}); "
                           "choose another feature_server_url")
    log_path = os.path.join(repo, "server.log")
    feast = os.path.join(os.path.dirname(sys.executable), "feast")
    # The embedded repository's registry store is ours (atomic_registry.py): the server imports it.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)}
    argv = ["-c", repo, "serve", *serve_options("127.0.0.1", parsed.port)]
    if fork and "feast" in sys.modules:
        # feast/cli/cli.py is what the `feast` script runs (feast 0.67.0: it ends in `cli()` as __main__).
        process = ForkedProcess("feast.cli.cli", argv, log_path, env, os.getcwd())
    else:
        with open(log_path, "ab") as log:
            process = subprocess.Popen([feast, *argv], stdin=subprocess.DEVNULL, stdout=log, env=env,
                                       stderr=subprocess.STDOUT, start_new_session=True)
    return {"pid": process.pid, "started": True, "url": url, "repo": repo, "log": log_path, "process": process}


def wait_serving(handle: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Waits until the server ``start_serving`` started answers; records it. Returns its state.

    Raises:
        RuntimeError: It exited, or did not answer within ``timeout`` seconds (it is stopped; its log's end is named).
    """
    process = handle.get("process")
    if process is None:
        return handle
    url, log_path = handle["url"], handle["log"]
    deadline = time.monotonic() + timeout
    while not _healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process.pid)
            with open(log_path, encoding="utf-8", errors="replace") as log:
                tail = log.read()[-1500:]
            raise RuntimeError(f"the feature server did not come up on {url}; its log ({log_path}) ends:\n{tail}")
        time.sleep(0.1)
    state = {"pid": process.pid, "started": start_ticks(process.pid), "url": url, "repo": handle["repo"],
             "log": log_path}
    with open(os.path.join(handle["repo"], STATE_FILE), "w", encoding="utf-8") as out:
        json.dump(state, out, indent=2)
    return {**state, "started": True}


def abandon(handle: dict[str, Any]) -> None:
    """Stops a server ``start_serving`` started, before it was waited for (the step failed meanwhile)."""
    if handle.get("process") is not None:
        stop_process(handle["process"].pid)


def stop(repo: str) -> dict[str, Any]:
    """Stops the repository's local feature server, if one runs; returns what was stopped."""
    state = read_state(repo)
    if state.get("pid") and pid_alive(state["pid"], state.get("started")):
        stop_process(state["pid"], started=state.get("started"))
        os.remove(os.path.join(repo, STATE_FILE))
        return state
    return {}
