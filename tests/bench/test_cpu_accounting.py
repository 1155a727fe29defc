"""bench.common.cpu_seconds: the CPU a target's process groups used, children included (the benchmark's
per-event CPU figures, which stay comparable on a busy machine, rest on it)."""

from __future__ import annotations

import subprocess
import sys

from bench.common import cpu_seconds

BURN = """
import os, subprocess, sys, time
print("ready", flush=True)
sys.stdin.readline()
SPIN = "import time\\nend = time.process_time() + 0.4\\nwhile time.process_time() < end: pass"
child = subprocess.Popen([sys.executable, "-c", SPIN])
end = time.process_time() + 0.4
while time.process_time() < end:
    pass
child.wait()
print("done", flush=True)
time.sleep(30)
"""


def test_a_group_and_its_children_are_counted_an_idle_group_is_not() -> None:
    busy = subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    idle = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)"],
                            start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        assert busy.stdin is not None and busy.stdout is not None
        assert busy.stdout.readline().strip() == "ready"
        assert idle.stdout is not None and idle.stdout.readline().strip() == "ready"
        before = cpu_seconds({"busy": busy.pid, "idle": idle.pid})
        busy.stdin.write("go\n")
        busy.stdin.flush()
        assert busy.stdout.readline().strip() == "done"
        after = cpu_seconds({"busy": busy.pid, "idle": idle.pid, "gone": 2 ** 22 + 7})
        # the leader's 0.4 s and its reaped child's 0.4 s (and the child's start-up)
        assert after["busy"] - before["busy"] >= 0.75
        assert after["idle"] - before["idle"] < 0.1
        assert after["gone"] == 0.0  # no such group: nothing, not an error
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait()
