"""Functions the evaluation-pool tests send to worker processes (a light module: a fresh worker
imports it by name on its first call)."""

from __future__ import annotations

import os


def spin() -> None:
    """Burn CPU for ever (what a thread-based timeout would leave running)."""
    while True:
        pass


def hog_memory() -> int:
    """Ask for 4 GiB."""
    return len(bytearray(4 * 1024**3))


def pid() -> int:
    return os.getpid()
