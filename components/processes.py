"""Local server processes (model server, monitor, feature server): ports and stopping. Standard library only."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from typing import NoReturn, Optional


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


def become_module(module: str, argv: list[str], env: dict[str, str], cwd: str, output_fd: int,
                  new_session: bool = False) -> NoReturn:
    """In a forked child: runs ``python -m module argv`` as a fresh interpreter would, then exits with its status.

    Stdin from /dev/null, stdout and stderr to ``output_fd``, the environment replaced whole, the
    working directory, ``random`` reseeded from the OS (a forked one would repeat the parent's
    sequence); its exit status as a fresh interpreter's (a crash prints its traceback, exit 1).

    Args:
        module: The module run as ``__main__`` (runpy).
        argv: Its arguments.
        env: Its whole environment.
        cwd: Its working directory.
        output_fd: Where its stdout and stderr go (closed here once duplicated).
        new_session: Start a session of its own first (as ``subprocess``'s ``start_new_session``).
    """
    import random
    import runpy

    code = 1
    try:
        if new_session:
            os.setsid()
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        random.seed()
        sys.argv = [module, *argv]
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            if done.code is not None and not isinstance(done.code, int):
                print(done.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - a crash is the program's, reported as Python reports it
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - exiting anyway
                pass
        os._exit(code)


class ForkedProcess:
    """``python -m MODULE ARGV`` forked from this process (``become_module``): a server without its imports.

    The child starts its own session (as ``start_new_session``), reads /dev/null, writes to the
    log, takes the environment whole and runs the module as ``__main__``, as a fresh interpreter
    would; it outlives this process (deploy's model server serves on after the step). Only a
    process that runs no other thread may fork: a pipeline step's, not a test runner's.
    """

    def __init__(self, module: str, argv: list[str], log_path: str, env: dict[str, str], cwd: str):
        """Forks and starts the module in the child (returns at once in the parent)."""
        self.module, self.returncode = module, None
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            become_module(module, argv, env, cwd, log, new_session=True)
        os.close(log)

    def poll(self) -> Optional[int]:
        """The exit code once the server ended, else None."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (stop_process waits for it): as Popen.poll, 0
                self.returncode = 0
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        """Waits for the server to end; its exit code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                import subprocess

                raise subprocess.TimeoutExpired(["python", "-m", self.module], timeout)
            time.sleep(0.05)
        return self.returncode
