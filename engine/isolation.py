"""Work a web request asks for that may be costly — rendering a template preview, validating a flow
(which evaluates its expressions on sample data), evaluating a decision table — runs in a small pool of
worker processes, never on the web process's event loop or in its threads.

Why processes: the expression budget (engine/expressions.py) already stops costly work, but a web
process must stay responsive even if some evaluation slipped past it, and a Python thread cannot be
stopped, only abandoned, while it keeps burning CPU and holding the GIL. A worker process that
overruns its deadline is killed (SIGKILL) and replaced, so its work really stops; its address space
is capped (``RLIMIT_AS``), so a memory spike ends in that process, not in the web app.

Only module-level functions can be sent (they travel by name, as pickle does it); their arguments
and results must pickle. Errors come back as the exception the function raised.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from engine.settings import get_settings
from engine.text import Msg

#: how long a new worker process may take to start (imports), not counted against any evaluation
STARTUP_SECONDS = 60


class IsolationError(RuntimeError):
    """The isolated evaluation did not give an answer (timed out, was refused, or its process died)."""


class EvaluationTimeout(IsolationError):
    """The evaluation went past its deadline; its process was killed."""


class EvaluationBusy(IsolationError):
    """Every worker process stayed busy for longer than a request may wait."""


def warm_up() -> None:
    """What a worker loads before it says it is ready: the expression sandbox and the node registry (its
    first import would otherwise eat the first evaluation's deadline)."""
    import engine.expressions  # noqa: F401
    from engine.registry import default_registry

    default_registry()


def _serve(conn: Connection, memory_bytes: int, warm: Callable[[], None] | None = warm_up) -> None:
    """A worker process: run what arrives, one call at a time, until the pipe closes."""
    if memory_bytes > 0:
        import resource

        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    if warm is not None:  # the first call's deadline is for its own work, not for imports
        warm()
    conn.send(("ready", None))
    while True:
        try:
            fn, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        except Exception as exc:  # the call could not be unpickled (e.g. a function that is not importable)
            conn.send(("error", IsolationError(f"the call could not be received: {type(exc).__name__}: {exc}")))
            continue
        try:
            reply: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except MemoryError:
            reply = ("error", IsolationError("the evaluation needed more memory than its limit"))
        except BaseException as exc:  # the caller gets the exception itself
            reply = ("error", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # an unpicklable result or exception: say what it was
            conn.send(("error", IsolationError(f"the evaluation's answer could not be sent back: "
                                               f"{type(exc).__name__}: {exc}")))


class _Worker:
    def __init__(self, memory_bytes: int, warm: Callable[[], None] | None = warm_up) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, memory_bytes, warm), daemon=True,
                                       name="tideflow-evaluation")
        self.process.start()
        child.close()
        # wait until it has started up, so start-up time never counts against an evaluation's deadline
        if not self.conn.poll(STARTUP_SECONDS) or self.conn.recv()[0] != "ready":
            self.kill()
            raise IsolationError(Msg("an evaluation process did not start within %(seconds)s s",
                                     seconds=STARTUP_SECONDS))

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float
             ) -> tuple[str, Any] | None:
        """Blocking: send the call, wait at most ``timeout`` seconds; None when the deadline passed."""
        self.conn.send((fn, args, kwargs))
        if not self.conn.poll(timeout):
            return None
        reply: tuple[str, Any] = self.conn.recv()
        return reply


class IsolatedPool:
    """``workers`` processes, each answering one call at a time within ``timeout`` seconds."""

    def __init__(self, workers: int = 1, timeout: float = 5.0, memory_mb: int = 1024, queue_wait: float = 10.0,
                 warm: Callable[[], None] | None = warm_up) -> None:
        self.warm = warm
        self.size = max(1, workers)
        self.timeout = timeout
        self.memory_bytes = memory_mb * 1024 * 1024 if memory_mb > 0 else 0
        self.queue_wait = queue_wait
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._free = threading.Semaphore(self.size)
        self.killed = 0  # workers killed past their deadline (for tests and metrics)
        self.owner = os.getpid()

    def _take(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        worker = _Worker(self.memory_bytes, self.warm)
        with self._lock:
            self._all.add(worker)
        return worker

    def _give_back(self, worker: _Worker | None) -> None:
        with self._lock:
            if worker is not None:
                self._idle.append(worker)
        self._free.release()

    def _drop(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in a worker process (blocking; see :meth:`run` for async code)."""
        if not self._free.acquire(timeout=self.queue_wait):
            raise EvaluationBusy(Msg("all %(count)s evaluation processes stayed busy for %(seconds)s s; try again "
                                     "in a moment", count=self.size, seconds=f"{self.queue_wait:g}"))
        worker: _Worker | None = None
        try:
            worker = self._take()
            try:
                reply = worker.call(fn, args, kwargs, self.timeout if timeout is None else timeout)
            except (EOFError, OSError, BrokenPipeError):
                self._drop(worker)
                worker = None
                raise IsolationError(Msg("the evaluation process died (over its memory limit?)")) from None
            if reply is None:
                self._drop(worker)
                worker = None
                self.killed += 1
                raise EvaluationTimeout(Msg("took longer than %(seconds)s s and was stopped; simplify it",
                                            seconds=f"{self.timeout if timeout is None else timeout:g}"))
            kind, value = reply
            if kind == "error":
                raise value
            return value
        finally:
            self._give_back(worker)

    async def run(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """:meth:`call` without blocking the event loop (the waiting happens in a thread; the work in a
        worker process)."""
        return await asyncio.to_thread(self.call, fn, *args, timeout=timeout, **kwargs)

    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._all if w.pid is not None]

    def close(self) -> None:
        with self._lock:
            workers, self._all, self._idle = list(self._all), set(), []
        for worker in workers:
            worker.kill()


_POOL: IsolatedPool | None = None
_POOL_LOCK = threading.Lock()


def default_pool() -> IsolatedPool:
    """The process-wide pool, sized by settings (``TIDEFLOW_EVALUATION_*``); a forked child gets its own."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.owner != os.getpid():
            settings = get_settings()
            _POOL = IsolatedPool(workers=settings.evaluation_workers, timeout=settings.evaluation_timeout_seconds,
                                 memory_mb=settings.evaluation_memory_mb)
        return _POOL


def close_default_pool() -> None:
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.close()
            _POOL = None


atexit.register(close_default_pool)
