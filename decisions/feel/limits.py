"""The cost bound of one FEEL evaluation: steps, sizes and call depth — counted, never timed.

Every evaluation (an expression, a decision table, a whole decision graph) gets one
:class:`Budget`. Loop iterations (``for``, ``some``/``every``, filters), function calls, items of
lists built, characters of text built and elements sorted or searched are counted as *steps*; a
value larger than :data:`MAX_ITEMS` items or :data:`MAX_TEXT` characters is refused when it would be
made, and nested function calls (recursion through BKMs or ``function`` values) are bounded by
:data:`MAX_CALL_DEPTH` and by :data:`MAX_FRAMES`, an estimate of the Python stack they would use.
Everything is counted, not timed, so an evaluation that fails on a limit fails the same way on
every replay of a workflow. The figures mirror the Jinja sandbox's (:mod:`engine.expressions`):
100,000 operations, 1,000,000 characters of text and 100,000 items per value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from wording import Msg

MAX_STEPS = 100_000
MAX_TEXT = 1_000_000
MAX_ITEMS = 100_000
MAX_CALL_DEPTH = 64
#: Python frames a chain of nested calls may use (each call costs its body's tree height)
MAX_FRAMES = 600
#: notes (errors turned into null) kept per evaluation
MAX_NOTES = 20


class FeelLimitError(Exception):
    """An evaluation went over a limit. Never turned into null: the caller sees it."""


class Budget:
    """What one evaluation has used so far."""

    __slots__ = ("calls", "frames", "max_steps", "notes", "now", "steps")

    def __init__(self, max_steps: int = MAX_STEPS, now: object = None) -> None:
        self.steps = 0
        self.max_steps = max_steps
        self.calls = 0
        self.frames = 0
        self.notes: list[str] = []
        #: what ``now()`` and ``today()`` answer (a datetime); the caller fixes it (workflow time)
        self.now = now

    def charge(self, steps: int = 1) -> None:
        self.steps += steps
        if self.steps > self.max_steps:
            raise FeelLimitError(Msg("the evaluation takes more than %(limit)s steps (loops, calls, items built); "
                                     "simplify it", limit=self.max_steps))

    def note(self, message: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(message)

    def enter(self, frames: int) -> None:
        self.calls += 1
        self.frames += frames
        if self.calls > MAX_CALL_DEPTH:
            raise FeelLimitError(Msg("function calls nest deeper than %(limit)s (a recursive BKM or function?)",
                                     limit=MAX_CALL_DEPTH))
        if self.frames > MAX_FRAMES:
            raise FeelLimitError(Msg("function calls nest too deeply for their size (a recursive BKM or "
                                     "function?)"))

    def leave(self, frames: int) -> None:
        self.calls -= 1
        self.frames -= frames


def check_text(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise FeelLimitError(Msg("a text would be longer than the limit of %(limit)s characters", limit=MAX_TEXT))
    return text


def check_items(count: int) -> None:
    if count > MAX_ITEMS:
        raise FeelLimitError(Msg("a list would have more than the limit of %(limit)s items", limit=MAX_ITEMS))


_CURRENT: ContextVar[Budget | None] = ContextVar("tideflow_feel_budget", default=None)


def current() -> Budget:
    """The budget of the evaluation running now (a fresh one outside any evaluation)."""
    budget = _CURRENT.get()
    if budget is None:
        budget = Budget()
        _CURRENT.set(budget)
    return budget


@contextmanager
def metered(budget: Budget) -> Iterator[Budget]:
    """Run an evaluation under ``budget`` (nested evaluations share the outer budget)."""
    outer = _CURRENT.get()
    token = _CURRENT.set(budget if outer is None else outer)
    try:
        yield budget if outer is None else outer
    finally:
        _CURRENT.reset(token)
