"""What the benchmarks share: scale, results, the Temporal dev server, databases, a worker, bulk customers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

log = logging.getLogger("bench")


# -- CPU ----------------------------------------------------------------------------------------------------
def cpu_seconds(groups: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system, seconds) used so far by each named process group (a target's processes are
    started in sessions of their own, so a group id is the leader's pid): its live members, the dead
    children they reaped included. On a busy machine this stays comparable where wall-clock rates do not."""
    from tests.e2e.stack import process_stats

    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(groups, 0.0)
    by_group = {pgid: name for name, pgid in groups.items()}
    for _pid, fields in process_stats():
        name = by_group.get(int(fields[2]))
        if name is not None:  # utime, stime, and cutime, cstime: the children it reaped
            used[name] += sum(int(f) for f in fields[11:15]) / tick
    return used


async def quiet_down(groups: dict[str, int], busy: float = 0.15, calm_seconds: float = 2, limit: float = 60,
                     interval: float = 1.0) -> float:
    """Wait until the process groups together use less than ``busy`` of a core for ``calm_seconds`` seconds
    in a row (at most ``limit`` s), looking every ``interval`` s: after an overload, a target still works off
    what it queued (Temporal's own task backlog, re-routing), and a measurement started then measures that
    recovery. Returns the wait."""
    began = last = time.monotonic()
    calm = 0.0
    before = cpu_seconds(groups)
    while calm < calm_seconds - 1e-3 and last - began < limit:
        await asyncio.sleep(interval)
        after, now = cpu_seconds(groups), time.monotonic()
        calm = calm + (now - last) if sum(after.values()) - sum(before.values()) < busy * (now - last) else 0.0
        before, last = after, now
    return time.monotonic() - began


# -- scale ------------------------------------------------------------------------------------------------
def scale() -> float:
    """``BENCH_SCALE`` (default 1): multiplies every benchmark's size. 10 gives the 100,000-customer broadcast."""
    raw = os.environ.get("BENCH_SCALE", "").strip()
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        raise SystemExit(f"BENCH_SCALE must be a number, not {raw!r}") from None
    if value <= 0:
        raise SystemExit("BENCH_SCALE must be positive")
    return value


def sized(env: str, default: int, minimum: int = 1) -> int:
    """A size: ``env`` when set, else ``default × BENCH_SCALE``."""
    if os.environ.get(env, "").strip():
        return env_int(env, default, minimum)
    return max(minimum, round(default * scale()))


def env_int(env: str, default: int, minimum: int = 1) -> int:
    """An integer from ``env`` (not scaled), else ``default``."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        return max(minimum, int(raw))
    except ValueError:
        raise SystemExit(f"{env} must be an integer, not {raw!r}") from None


# -- results ----------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the final table. ``ratio`` is how the value stands against the target (≥ 1 meets it)."""

    benchmark: str
    value: str
    target: str = ""
    ratio: float | None = None

    def verdict(self) -> str:
        if self.ratio is None:
            return ""
        word = "meets" if self.ratio >= 1 else "misses"
        return f"{self.ratio:.2f}× target, {word}"


@dataclass
class Report:
    """What one benchmark measured: table rows plus free-text notes (sizes, hot spots)."""

    name: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    failed: bool = False


def at_least(value: float, target: float) -> float:
    return value / target if target else math.inf


def at_most(value: float, target: float) -> float:
    return target / value if value > 0 else math.inf


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0–100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def table(rows: Sequence[Row], markdown: bool = False) -> str:
    head = ("benchmark", "value", "target", "ratio / verdict")
    cells = [head, *((r.benchmark, r.value, r.target, r.verdict()) for r in rows)]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in cells[1:]]
        return "\n".join(lines)
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    out = [" | ".join(c[i].ljust(widths[i]) for i in range(len(head))).rstrip() for c in cells]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


# -- the stack ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """A temp directory, the real Temporal dev server (in memory) and fresh migrated SQLite databases.

    The process environment is pointed at the temp directory and a private task queue, so nothing
    touches ./.tideflow or a running Tideflow.
    """

    def __init__(self, server: bool = True) -> None:
        self.server = server
        self._tmp = tempfile.TemporaryDirectory(prefix="tideflow-bench-")
        self.root = Path(self._tmp.name)
        self._token = secrets.token_hex(4)
        self.task_queue = f"bench-{self._token}"
        self.env: WorkflowEnvironment | None = None
        self._saved: dict[str, str | None] = {}

    @property
    def client(self) -> Client:
        assert self.env is not None, "the stack is not started"
        return self.env.client

    def use_queue(self, name: str) -> None:
        """A task queue of its own for the next benchmark (so nothing one left behind runs in the next)."""
        from engine.settings import get_settings

        self.task_queue = f"bench-{self._token}-{name}"
        os.environ["TIDEFLOW_TASK_QUEUE"] = self.task_queue
        get_settings.cache_clear()

    def database(self, name: str) -> str:
        """A new SQLite database, migrated to the newest schema (one per benchmark keeps them apart)."""
        from engine.db.session import upgrade

        url = f"sqlite:///{self.root / f'{name}.db'}"
        upgrade(url)
        return url

    async def __aenter__(self) -> Stack:
        from engine.settings import get_settings
        from engine.temporal_bin import dev_server_path

        for key, value in {"TIDEFLOW_DATA_DIR": str(self.root / "data"), "TIDEFLOW_TASK_QUEUE": self.task_queue,
                           "TIDEFLOW_DATABASE_URL": None}.items():
            self._saved[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        if self.server:
            self.env = await WorkflowEnvironment.start_local(dev_server_existing_path=dev_server_path(),
                                                             dev_server_log_level="error")
        return self

    async def __aexit__(self, *exc: object) -> None:
        from engine.settings import get_settings

        try:
            if self.env is not None:
                await self.env.shutdown()
        finally:
            for key, value in self._saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            get_settings.cache_clear()
            self._tmp.cleanup()


@contextlib.asynccontextmanager
async def running_worker(stack: Stack, database_url: str, extra_workflows: Sequence[type] = (),
                         extra_activities: Sequence[Callable[..., Any]] = ()) -> AsyncIterator[Worker]:
    """The engine's own worker (``engine.worker.build_worker``, unchanged settings), running.

    ``extra_workflows`` are registered beside the engine's workflows on the same worker, so a
    baseline runs with exactly the same worker settings as the interpreter.
    """
    import engine.worker

    own = engine.worker.workflows
    with mock.patch.object(engine.worker, "workflows", lambda: [*own(), *extra_workflows]):
        worker = engine.worker.build_worker(stack.client, stack.task_queue, database_url,
                                            extra_activities=extra_activities)
    async with worker:
        yield worker


class FailureCounter(logging.Handler):
    """Counts the warnings a logger emits (e.g. ``engine.actions``: an action attempt failed and is retried)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.first is None:
            self.first = record.getMessage()[:300]

    def summary(self) -> str:
        return "none" if not self.count else f"{self.count} (first: {self.first})"


@contextlib.contextmanager
def counting_failures(logger: str = "engine.actions") -> Iterator[FailureCounter]:
    counter = FailureCounter()
    target = logging.getLogger(logger)
    target.addHandler(counter)
    try:
        yield counter
    finally:
        target.removeHandler(counter)


# -- data -----------------------------------------------------------------------------------------------------
def bulk_customers(database_url: str, count: int, prefix: str, attributes: dict[str, Any] | None = None,
                   chunk: int = 5000) -> list[str]:
    """Insert ``count`` customers (with an ``external_id`` identity each) in bulk; returns their ids, sorted."""
    from sqlalchemy import insert

    from engine.db import models
    from engine.db.session import transaction

    now = datetime.now(UTC)
    ids = [f"c_{prefix}{i:08d}" for i in range(count)]
    for start in range(0, count, chunk):
        part = ids[start:start + chunk]
        with transaction(database_url) as db:
            db.execute(insert(models.Customer), [
                {"id": cid, "name": f"客户{cid[-5:]}", "timezone": None, "attributes": dict(attributes or {}),
                 "consent": {}, "merged_into": None, "created_at": now, "updated_at": now} for cid in part])
            db.execute(insert(models.Identity), [
                {"kind": "external_id", "value": f"{prefix}-{cid}", "customer_id": cid, "created_at": now}
                for cid in part])
    return ids


def publish(database_url: str, document: dict[str, Any], actor: str = "bench") -> dict[str, Any]:
    """Save and publish a flow through the engine's flow service; returns the compiled version."""
    from engine import flows
    from engine.db.session import transaction

    with transaction(database_url) as db:
        flows.save_draft(db, document, actor)
        version = flows.publish(db, document["id"], actor)
        return dict(version.compiled)


def flow_document(flow_id: str, nodes: list[tuple[str, str, dict[str, Any]]], edges: list[tuple[str, str, str]],
                  **settings: Any) -> dict[str, Any]:
    """A ``tideflow/flow@1`` document from (id, type, config) nodes and (from, port, to) edges."""
    return {
        "schema": "tideflow/flow@1", "id": flow_id, "name": flow_id, "kind": "journey", "settings": settings,
        "nodes": [{"id": i, "type": t, "config": c} for i, t, c in nodes],
        "edges": [{"from": a, "port": p, "to": b} for a, p, b in edges],
    }
