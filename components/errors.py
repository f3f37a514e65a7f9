"""The error a step reports as one clear line (no traceback), and how an exception becomes one line.

Standard library only, imported by the shared modules and the steps alike (``components.kfp_io``
re-exports both).
"""

from __future__ import annotations


class ComponentError(Exception):
    """An expected failure of a step: reported as one clear message, no traceback."""


def error_line(error: BaseException, limit: int = 300) -> str:
    """An exception as one line for an error message: its type and its text, whitespace folded."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:limit]}" if text else type(error).__name__
