"""bench.common.cpu_seconds: the CPU a target's process groups used, children included (the benchmark's
per-event CPU figures, which stay comparable on a busy machine, rest on it)."""

from __future__ import annotations

import subprocess
import sys

from bench.common import cpu_seconds, quiet_down

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


async def test_quiet_down_waits_for_a_busy_group_and_not_for_an_idle_one() -> None:
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        # a group that never calms down is waited for until the limit, not longer
        assert 2.0 <= await quiet_down({"spin": spin.pid}, limit=2) < 10
        # an idle group: two calm seconds in a row, well before the limit
        assert await quiet_down({"idle": idle.pid}, limit=30) < 30
    finally:
        for proc in (spin, idle):
            proc.kill()
            proc.wait()
