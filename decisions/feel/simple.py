"""The literal subset of FEEL cells that the static analysis of tables understands.

Tables take full FEEL (:mod:`decisions.feel`); :mod:`decisions.analysis` reasons about the cells
written in this subset — literal unary tests and literal outputs — and treats the others as
opaque. This module is also the evaluator Tideflow had before full FEEL (``make bench`` compares
with it). Input entries are *unary tests*; output entries are *literals*. The forms:

================================  =====================================================
``-`` or an empty cell            any value (including null)
``42``, ``-1.5``, ``"gold"``,     equal to the literal (numbers compare by value:
``true``, ``date("2024-01-01")``  ``1 = 1.0``)
``< 10``, ``<= 10``, ``> 5``,     comparisons against a number, string or date literal
``>= 5``, ``= x``, ``!= x``
``[1..10]``, ``[1..10)``,         ranges; ``(`` / ``)`` and the ISO forms ``]`` / ``[``
``(1..10]``, ``]1..10[``          facing outwards mark an open end
``"a", "b", < 0``                 a list: any of the tests
``not("a", "b")``                 none of the tests
``null``                          the value is missing (None)
================================  =====================================================

Null and type mismatches follow FEEL's three-valued logic: ``null < 10`` and ``"x" < 10`` are
*null* (unknown), equality with a value of another type or with null is *false*. A list is true if
any test is true, else null if any is null, else false; ``not(...)`` keeps null as null. A cell
*matches* only when its value is true, so ``not(< 10)`` does not match a missing amount while
``not("gold")`` does.

Outside the subset (:class:`FeelSyntaxError` here; full FEEL evaluates them): references to
variables (``< maxAmount``), arithmetic, function calls other than ``date("…")``, ``date and
time``, ``time`` and ``duration`` literals, and ``?``-expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal

from wording import Msg

#: A FEEL value as this module represents it. Numbers parsed from FEEL text are ``int`` when
#: integral in the text (``42``) and ``Decimal`` otherwise (``1.5``); floats never come out of a
#: parse, but are accepted as input values and compared exactly.
FeelValue = None | bool | int | Decimal | float | str | date

ValueKind = Literal["number", "string", "boolean", "date"]
ComparisonOperator = Literal["=", "!=", "<", "<=", ">", ">="]


from decisions.feel.syntax import FeelSyntaxError, unescape  # noqa: E402 - one error type, one string grammar

_KIND_OF_TYPE: dict[type, ValueKind] = {
    bool: "boolean", int: "number", Decimal: "number", float: "number", str: "string", date: "date"}


def value_kind(value: object) -> ValueKind | None:
    """The FEEL kind of a Python value, or None for null and values FEEL does not know."""
    kind = _KIND_OF_TYPE.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, date) and not isinstance(value, datetime):
        return "date"
    return None


def format_literal(value: FeelValue) -> str:
    """The FEEL text of a literal: ``null``, ``true``, ``42``, ``1.50``, ``"a \\"b\\""``, ``date("…")``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    return f'date("{value.isoformat()}")'


# --------------------------------------------------------------------------------------------- tests


@dataclass(frozen=True)
class Comparison:
    """``= v``, ``!= v``, ``< v``, …; a bare literal ``v`` is ``= v``."""

    operator: ComparisonOperator
    value: FeelValue

    def evaluate(self, subject: FeelValue) -> bool | None:
        if self.operator in ("=", "!="):
            if self.value is None:
                equal = subject is None
            else:
                equal = subject is not None and _same_kind(subject, self.value) and subject == self.value
            return equal if self.operator == "=" else not equal
        if subject is None or not _same_kind(subject, self.value):
            return None
        order = _order(subject, self.value)
        if self.operator == "<":
            return order < 0
        if self.operator == "<=":
            return order <= 0
        if self.operator == ">":
            return order > 0
        return order >= 0

    def __str__(self) -> str:
        literal = format_literal(self.value)
        return literal if self.operator == "=" else f"{self.operator} {literal}"


@dataclass(frozen=True)
class Range:
    """``[low..high]`` with each end open or closed."""

    low: FeelValue
    high: FeelValue
    low_closed: bool
    high_closed: bool

    def evaluate(self, subject: FeelValue) -> bool | None:
        if subject is None or not _same_kind(subject, self.low):
            return None
        above, below = _order(subject, self.low), _order(subject, self.high)
        within_low = above >= 0 if self.low_closed else above > 0
        return within_low and (below <= 0 if self.high_closed else below < 0)

    def __str__(self) -> str:
        return (f"{'[' if self.low_closed else '('}{format_literal(self.low)}.."
                f"{format_literal(self.high)}{']' if self.high_closed else ')'}")


@dataclass(frozen=True)
class NullTest:
    """``null``: the value is missing."""

    def evaluate(self, subject: FeelValue) -> bool | None:
        return subject is None

    def __str__(self) -> str:
        return "null"


PositiveTest = Comparison | Range | NullTest


@dataclass(frozen=True)
class UnaryTests:
    """A parsed input entry. No tests and not negated means ``-`` (any value)."""

    text: str
    tests: tuple[PositiveTest, ...]
    negated: bool = False

    @property
    def is_any(self) -> bool:
        return not self.tests and not self.negated

    def evaluate(self, subject: FeelValue) -> bool | None:
        """FEEL's three-valued result: True, False or None (null)."""
        if self.is_any:
            return True
        results = [test.evaluate(subject) for test in self.tests]
        if True in results:
            outcome: bool | None = True
        elif None in results:
            outcome = None
        else:
            outcome = False
        if self.negated and outcome is not None:
            return not outcome
        return outcome

    def matches(self, subject: FeelValue) -> bool:
        return self.evaluate(subject) is True

    def literal_kinds(self) -> set[ValueKind]:
        """The kinds of the literals the tests compare against (empty for ``-`` and ``null``)."""
        kinds: set[ValueKind] = set()
        for test in self.tests:
            values = [test.value] if isinstance(test, Comparison) else (
                [test.low, test.high] if isinstance(test, Range) else [])
            for value in values:
                kind = value_kind(value)
                if kind is not None:
                    kinds.add(kind)
        return kinds


def _same_kind(left: FeelValue, right: FeelValue) -> bool:
    kind = value_kind(left)
    return kind is not None and kind == value_kind(right)


def _order(left: FeelValue, right: FeelValue) -> int:
    """-1, 0 or 1 as ``left`` sorts before, with or after ``right``.

    Both must be numbers, strings or dates of the same kind. Python compares int, Decimal and float
    with each other exactly, so numbers need no conversion.
    """
    a: Any = left  # callers check the kinds; mismatches raise TypeError here
    return int(a > right) - int(a < right)


# --------------------------------------------------------------------------------------------- parser

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>\d+(?:\.\d+)?|\.\d+)
      | (?P<range>\.\.)
      | (?P<op><=|>=|!=|<|>|=)
      | (?P<punct>[()\[\],-])
      | (?P<name>[^\W\d]\w*)
    )""",
    re.VERBOSE,
)
_OPERATORS: dict[str, ComparisonOperator] = {
    "=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _quoted(text: str) -> str:
    return f"'{text}'"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            offset = position + len(text[position:]) - len(text[position:].lstrip())
            char = text[offset]
            problem = Msg("an unterminated string") if char == '"' else Msg("unexpected '%(char)s'", char=char)
            raise FeelSyntaxError(Msg("%(expression)s: %(problem)s at position %(position)s", expression=_quoted(text),
                                      problem=problem, position=offset + 1))
        tokens.append(_Token(match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    # helpers
    def peek(self, offset: int = 0) -> _Token | None:
        at = self.index + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error(Msg("unexpected end"))
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.peek()
        if token is None or token.text != text:
            raise self.error(Msg("expected '%(text)s'", text=text), token)
        self.index += 1

    def peek_is(self, text: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.text == text

    def at_end(self) -> bool:
        return self.index >= len(self.tokens)

    def error(self, problem: Msg, token: _Token | None = None) -> FeelSyntaxError:
        if token is None:
            token = self.peek()
        if token is None:
            return FeelSyntaxError(Msg("%(expression)s: %(problem)s at the end", expression=_quoted(self.text),
                                       problem=problem))
        return FeelSyntaxError(Msg("%(expression)s: %(problem)s at position %(position)s ('%(token)s')",
                                   expression=_quoted(self.text), problem=problem, position=token.position + 1,
                                   token=token.text))

    # grammar
    def unary_tests(self) -> UnaryTests:
        negated = self.peek_is("not") and self.peek_is("(", 1)
        if negated:
            self.index += 2
        tests = [self.positive_test()]
        while self.peek_is(","):
            self.index += 1
            tests.append(self.positive_test())
        if negated:
            self.expect(")")
        if not self.at_end():
            raise self.error(Msg("unexpected text"))
        return UnaryTests(self.text, tuple(tests), negated)

    def positive_test(self) -> PositiveTest:
        token = self.peek()
        if token is None:
            raise self.error(Msg("expected a test"))
        if token.kind == "op":
            self.index += 1
            operator = _OPERATORS[token.text]
            value = self.literal()
            if operator not in ("=", "!=") and (value is None or isinstance(value, bool)):
                raise self.error(Msg("'%(operator)s' needs a number, string or date", operator=operator), token)
            if value is None:
                return NullTest() if operator == "=" else Comparison("!=", None)
            return Comparison(operator, value)
        if token.text in ("[", "(", "]"):
            return self.range()
        if token.kind == "name" and token.text == "null":
            self.index += 1
            return NullTest()
        value = self.literal()
        return Comparison("=", value)

    def range(self) -> Range:
        opening = self.take()
        low = self.endpoint()
        self.expect("..")
        high = self.endpoint()
        closing = self.take()
        if closing.text not in ("]", ")", "["):
            raise self.error(Msg("expected ']', ')' or '[' to close the range"), closing)
        if value_kind(low) != value_kind(high):
            raise self.error(Msg("the range's ends are of different types"), opening)
        low_closed, high_closed = opening.text == "[", closing.text == "]"
        if _order(low, high) > 0 or (low == high and not (low_closed and high_closed)):
            raise self.error(Msg("the range is empty"), opening)
        return Range(low, high, low_closed, high_closed)

    def endpoint(self) -> FeelValue:
        token = self.peek()
        value = self.literal()
        if value is None or isinstance(value, bool):
            raise self.error(Msg("a range end must be a number, string or date"), token)
        return value

    def literal(self) -> FeelValue:
        token = self.take()
        if token.kind == "string":
            return unescape(token.text)
        if token.text == "-":
            number = self.take()
            if number.kind != "number":
                raise self.error(Msg("expected a number after '-'"), number)
            return -_number(number.text)
        if token.kind == "number":
            return _number(token.text)
        if token.kind == "name":
            if token.text in ("true", "false"):
                return token.text == "true"
            if token.text == "null":
                return None
            if token.text == "date" and self.peek_is("("):
                self.index += 1
                argument = self.take()
                if argument.kind != "string":
                    raise self.error(Msg("date(…) takes a string such as \"2024-01-01\""), argument)
                self.expect(")")
                try:
                    return date.fromisoformat(unescape(argument.text))
                except ValueError:
                    raise self.error(Msg("not a date (expected YYYY-MM-DD)"), argument) from None
            raise self.error(Msg("variables and functions are not supported, only literals"), token)
        raise self.error(Msg("expected a literal"), token)


def _number(text: str) -> int | Decimal:
    if "." not in text:
        return int(text)
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the tokenizer only lets digits through
        raise FeelSyntaxError(Msg("'%(text)s' is not a number", text=text)) from None


@lru_cache(maxsize=8192)
def parse_unary_tests(text: str) -> UnaryTests:
    """Parse an input entry. An empty or blank cell is ``-``. Raises :class:`FeelSyntaxError`."""
    if text.strip() in ("", "-"):
        return UnaryTests(text, ())
    return _Parser(text).unary_tests()


@lru_cache(maxsize=8192)
def parse_literal(text: str) -> FeelValue:
    """Parse an output entry: a number, string, boolean, ``date("…")`` or ``null``; blank is null."""
    if text.strip() == "":
        return None
    parser = _Parser(text)
    value = parser.literal()
    if not parser.at_end():
        raise parser.error(Msg("an output entry must be a single literal"))
    return value
