"""FEEL, DMN's expression language, at DMN compliance level 3.

- :func:`compile_expression` / :func:`evaluate` — a FEEL expression (``amount * 0.1``,
  ``if vip then "VIP-" + level else "std"``, ``for x in items return x.price``, …);
- :func:`compile_unary_tests` — an input entry of a decision table (``< limit``,
  ``[min..max]``, ``"gold","silver"``, ``not(null)``, ``? > 10``);
- :mod:`decisions.feel.simple` — the literal subset of input and output entries that the static
  analysis of tables (:mod:`decisions.analysis`) understands; its names are re-exported here.

Modules: :mod:`~decisions.feel.syntax` (tokenizer, parser), :mod:`~decisions.feel.interpreter`
(evaluation), :mod:`~decisions.feel.library` (built-in functions), :mod:`~decisions.feel.values`
and :mod:`~decisions.feel.temporal` (values, equality, dates and durations),
:mod:`~decisions.feel.types` (``instance of``, item definitions) and :mod:`~decisions.feel.limits`
(the cost bound every evaluation runs under).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from decisions.feel import interpreter, syntax
from decisions.feel.limits import Budget, FeelLimitError, metered
from decisions.feel.simple import (
    Comparison,
    ComparisonOperator,
    FeelValue,
    NullTest,
    PositiveTest,
    Range,
    UnaryTests,
    ValueKind,
    format_literal,
    parse_literal,
    parse_unary_tests,
    value_kind,
)
from decisions.feel.syntax import FeelSyntaxError
from decisions.feel.values import FeelError, FeelFunction, FeelRange, YearsMonths, to_feel, to_text, type_name
from wording import Msg

__all__ = [
    "Budget", "Comparison", "ComparisonOperator", "Expression", "FeelError", "FeelFunction", "FeelLimitError",
    "FeelRange", "FeelSyntaxError", "FeelValue", "NullTest", "PositiveTest", "Range", "Tests", "UnaryTests",
    "ValueKind", "YearsMonths", "compile_expression", "compile_unary_tests", "evaluate", "format_literal",
    "parse_literal", "parse_unary_tests", "to_feel", "to_text", "type_name", "value_kind",
]


@dataclass(frozen=True)
class Expression:
    """A compiled FEEL expression."""

    text: str
    tree: syntax.Node
    run: interpreter.Evaluator

    def tree_height(self) -> int:
        return syntax.tree_height(self.tree)

    def evaluate(self, context: Mapping[str, Any] | None = None, *, now: datetime | None = None,
                 budget: Budget | None = None) -> Any:
        """The value for ``context`` (Python values, converted with :func:`to_feel`). Errors
        FEEL turns into null give null (see ``budget.notes``); a limit raises :class:`FeelLimitError`."""
        scope = interpreter.Scope(to_feel(dict(context or {})))
        with metered(budget or Budget(now=now)):
            try:
                return self.run(scope)
            except RecursionError:  # a safety net: the frame budget (limits.MAX_FRAMES) comes first
                raise FeelLimitError(Msg("the evaluation nests too deeply")) from None


@dataclass(frozen=True)
class Tests:
    """Compiled unary tests (an input entry)."""

    text: str
    tree: syntax.UnaryTests
    run: interpreter.Test

    @property
    def is_any(self) -> bool:
        return self.tree.is_any

    def evaluate(self, value: Any, context: Mapping[str, Any] | None = None, *,
                 budget: Budget | None = None) -> bool | None:
        scope = interpreter.Scope(to_feel(dict(context or {})))
        with metered(budget or Budget()):
            return self.run(to_feel(value), scope)

    def matches(self, value: Any, context: Mapping[str, Any] | None = None) -> bool:
        return self.evaluate(value, context) is True


@lru_cache(maxsize=4096)
def _compile_expression(text: str, names: frozenset[str]) -> Expression:
    tree = syntax.parse_expression(text, names)
    return Expression(text, tree, interpreter.compile_expression(tree))


def compile_expression(text: str, names: Iterable[str] = ()) -> Expression:
    """Parse and compile an expression. ``names`` are the variables it may use (names with spaces
    are recognised only when known). Raises :class:`FeelSyntaxError`."""
    return _compile_expression(text, frozenset(names))


@lru_cache(maxsize=8192)
def _compile_unary_tests(text: str, names: frozenset[str]) -> Tests:
    tree = syntax.parse_unary_tests(text, names)
    return Tests(text, tree, interpreter.compile_unary_tests(tree))


def compile_unary_tests(text: str, names: Iterable[str] = ()) -> Tests:
    """Parse and compile an input entry. Raises :class:`FeelSyntaxError`."""
    return _compile_unary_tests(text, frozenset(names))


def evaluate(text: str, context: Mapping[str, Any] | None = None, *, now: datetime | None = None) -> Any:
    """Compile (cached) and evaluate an expression over ``context``; the names of its entries, nested
    ones too, are known (so ``Loan.Monthly Payment`` parses)."""
    return compile_expression(text, context_names(context or {})).evaluate(context, now=now)


def context_names(context: Mapping[str, Any], limit: int = 2000) -> set[str]:
    """The keys of a context and of the contexts (and lists of contexts) inside it, up to ``limit``."""
    names: set[str] = set()
    stack: list[Any] = [context]
    while stack and len(names) < limit:
        value = stack.pop()
        if isinstance(value, Mapping):
            names.update(str(key) for key in value)
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value[:50])
    return names
