"""Local server processes: a recorded pid is signalled only while it is still the process that was recorded."""

import subprocess

from components.processes import pid_alive, start_ticks, stop_process


def _sleeper():
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_a_pid_now_held_by_another_process_is_left_alone():
    other = _sleeper()
    try:
        ticks = start_ticks(other.pid)
        assert ticks is not None and pid_alive(other.pid, ticks)
        recorded = ticks - 1  # what a state file of an earlier process with the same pid would hold
        assert not pid_alive(other.pid, recorded)
        stop_process(other.pid, timeout=2, started=recorded)
        assert other.poll() is None, "a process that is not ours was signalled"
        stop_process(other.pid, timeout=5, started=ticks)
        assert not pid_alive(other.pid, ticks)
    finally:
        other.kill()
        other.wait()


def test_start_ticks_of_a_process_that_is_gone_is_none():
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert start_ticks(gone.pid) is None and not pid_alive(gone.pid)
