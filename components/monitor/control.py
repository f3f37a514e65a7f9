"""Start and stop a local monitor process (standard library only: the demo and tests use it from any runtime)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from typing import Optional

from components.paths import REPO_ROOT


def start(python: str, state_dir: str, port: int, log_path: str, spec_path: str, registry_uri: Optional[str] = None,
          extra: Optional[list[str]] = None,
          timeout: float = 120.0) -> subprocess.Popen:
    """Starts ``python -m components.monitor serve`` in its own session and waits until it answers.

    Args:
        python: Interpreter of the monitor runtime.
        state_dir: The monitor's state folder.
        port: Port on loopback.
        log_path: File receiving its output.
        registry_uri: Model registry (training samples, blessed metrics).
        spec_path: The dataset spec of the monitored model (spec.toml or its JSON).
        extra: More ``serve`` options (thresholds).
        timeout: Seconds to wait for ``/healthz``.

    Raises:
        RuntimeError: It exited or did not answer in time (its log is quoted).
    """
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    command = [python, "-m", "components.monitor", "serve", "--state", state_dir, "--port", str(port),
               "--spec", spec_path, *(["--registry", registry_uri] if registry_uri else []), *(extra or [])]
    with open(log_path, "a", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=REPO_ROOT, start_new_session=True,
                                   env={**os.environ, "PYTHONPATH": REPO_ROOT, "PYTHONUNBUFFERED": "1",
                                        "TF_CPP_MIN_LOG_LEVEL": "2"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(log_path, encoding="utf-8") as handle:
                raise RuntimeError(f"monitor exited with code {process.returncode}:\n{handle.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if json.loads(answer.read()).get("ok"):
                    return process
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            pass
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"monitor on port {port} did not answer within {timeout:.0f} s (log: {log_path})")


def request(method: str, url: str, body: Optional[bytes] = None, content_type: str = "application/json",
            timeout: float = 600.0) -> tuple[int, object]:
    """One HTTP request to the monitor; returns ``(status, parsed JSON)``."""
    call = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(call, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode(errors="replace")


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stops a monitor started by ``start`` (its whole session): SIGTERM, then SIGKILL."""
    import signal

    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
