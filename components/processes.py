"""Local server processes (model server, monitor, feature server): ports and stopping. Standard library only."""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import Optional


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ticks(pid: int) -> Optional[int]:
    """When a process started, in clock ticks since boot (``/proc/<pid>/stat`` field 22); None if it is gone.

    A state file records it beside the pid, so a pid the kernel has since given to another process
    is not taken for ours (proc(5): starttime).
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: fields resume after the last ")".
    return int(stat[stat.rindex(")") + 2:].split()[19])


def pid_alive(pid: int, started: Optional[int] = None) -> bool:
    """Tells whether a process still runs (and, when ``started`` is given, is the one that started then)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return started is None or start_ticks(pid) == started


def stop_process(pid: int, timeout: float = 10.0, started: Optional[int] = None) -> None:
    """Stops a server's process group (it was started in its own session): SIGTERM, then SIGKILL after ``timeout``.

    With ``started`` (``start_ticks`` when it was recorded), a pid now held by another process is left alone.
    """
    if started is not None and not pid_alive(pid, started):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited:
                return
        except ChildProcessError:
            pass
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
