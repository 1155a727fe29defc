"""The quick ingest bench's plumbing: the order it measures targets in, the sizes the full bench keeps, quiet_down
looking more often, and the prepared n8n user folder pointed at a run's sink."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
from pathlib import Path

from bench.common import quiet_down
from bench.ingest import Sizes, interleaved
from bench.n8n import PLACEHOLDER, point_at, workflow


def test_a_targets_steady_half_waits_for_the_next_targets_capacity_half() -> None:
    keys = ["tideflow-sqlite", "n8n", "tideflow-one", "raw", "raw-eager"]
    order = interleaved(keys, steady={"tideflow-sqlite", "n8n", "tideflow-one"})
    assert order == [("tideflow-sqlite", "capacity"), ("n8n", "capacity"), ("tideflow-sqlite", "steady"),
                     ("tideflow-one", "capacity"), ("n8n", "steady"), ("raw", "capacity"),
                     ("tideflow-one", "steady"), ("raw-eager", "capacity")]
    # every half once, a target's capacity before its steady half, and never one target twice in a row
    assert sorted(order) == sorted({*order})
    for key in keys:
        halves = [half for k, half in order if k == key]
        assert halves == (["capacity", "steady"] if key not in ("raw", "raw-eager") else ["capacity"])
    assert all(a[0] != b[0] for a, b in itertools.pairwise(order))


def test_the_last_steady_half_comes_last() -> None:
    assert interleaved(["a", "b"], steady={"a", "b"}) == [("a", "capacity"), ("b", "capacity"), ("a", "steady"),
                                                          ("b", "steady")]
    assert interleaved(["a"], steady={"a"}) == [("a", "capacity"), ("a", "steady")]
    assert interleaved(["a", "b"], steady=set()) == [("a", "capacity"), ("b", "capacity")]


def test_the_full_bench_keeps_its_sizes() -> None:
    full = Sizes()
    assert (full.ramp_start, full.ramp_factor, full.step_seconds, full.step_slack) == (10, 1.3, 6, 1.0)
    assert (full.growth_limit, full.ramp_down) == (0.1, 2)
    assert (full.paced_events, full.partial_seconds, full.overload_seconds, full.warm_up) == (100, 10, 10, 30)
    assert (full.rest_seconds, full.give_up_seconds, full.drain_seconds) == (20, 120, float("inf"))
    assert (full.calm_seconds, full.calm_interval, full.calm_limit, full.others_ramp_start) == (2, 1.0, 60, None)
    quick = Sizes.quick()
    # a quick ramp step is "in time" by the same rule as before: slack a third of the step
    assert quick.step_slack * 3 == quick.step_seconds


async def test_quiet_down_looking_every_quarter_second() -> None:
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        assert 1.0 <= await quiet_down({"spin": spin.pid}, calm_seconds=0.5, interval=0.25, limit=1) < 5
        assert await quiet_down({"idle": idle.pid}, calm_seconds=0.5, interval=0.25, limit=10) < 5
    finally:
        for proc in (spin, idle):
            proc.kill()
            proc.wait()


def test_a_prepared_database_is_pointed_at_the_runs_sink(tmp_path: Path) -> None:
    import json

    database = tmp_path / "database.sqlite"
    nodes = json.dumps(workflow(PLACEHOLDER)["nodes"])
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE workflow_entity (id TEXT, nodes TEXT, version INTEGER)")
        db.execute("CREATE TABLE workflow_history (nodes TEXT, other BLOB)")
        db.execute("INSERT INTO workflow_entity VALUES ('w', ?, 3)", (nodes,))
        db.execute("INSERT INTO workflow_history VALUES (?, ?)", (nodes, PLACEHOLDER.encode()))
        db.execute("INSERT INTO workflow_history VALUES ('nothing to change', NULL)")
    db.close()
    sink = "http://127.0.0.1:41234/messages"
    assert point_at(database, PLACEHOLDER, sink) == 2
    with sqlite3.connect(database) as db:
        texts = [row[0] for row in db.execute("SELECT nodes FROM workflow_entity UNION ALL "
                                               "SELECT nodes FROM workflow_history")]
    db.close()
    assert [PLACEHOLDER in text for text in texts] == [False, False, False]
    assert [sink in text for text in texts] == [True, True, False]
    # the workflow is the same in every run (its prepared folder is found again by a hash of it)
    assert workflow(PLACEHOLDER) == workflow(PLACEHOLDER)
