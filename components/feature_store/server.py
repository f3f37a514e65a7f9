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

from components.processes import pid_alive, start_ticks, stop_process

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

    A server already answering there is kept (it reads the online store on every request, so
    new materializations need no restart); otherwise one is started in its own session.

    Raises:
        RuntimeError: The URL is not a loopback http URL, or the server does not come up.
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
    with open(log_path, "ab") as log:
        process = subprocess.Popen([feast, "-c", repo, "serve", *serve_options("127.0.0.1", parsed.port)],
                                   stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not _healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process.pid)
            with open(log_path, encoding="utf-8", errors="replace") as handle:
                tail = handle.read()[-1500:]
            raise RuntimeError(f"the feature server did not come up on {url}; its log ({log_path}) ends:\n{tail}")
        time.sleep(0.2)
    state = {"pid": process.pid, "started": start_ticks(process.pid), "url": url, "repo": repo, "log": log_path}
    with open(os.path.join(repo, STATE_FILE), "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
    return {**state, "started": True}


def stop(repo: str) -> dict[str, Any]:
    """Stops the repository's local feature server, if one runs; returns what was stopped."""
    state = read_state(repo)
    if state.get("pid") and pid_alive(state["pid"], state.get("started")):
        stop_process(state["pid"], started=state.get("started"))
        os.remove(os.path.join(repo, STATE_FILE))
        return state
    return {}
