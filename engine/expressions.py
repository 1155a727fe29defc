"""The one expression and template language of flows: Jinja2's immutable sandbox.

Conditions and filters are Jinja2 *expressions* (``customer.orders_count > 0``),
messages are Jinja2 *templates* (``你好 {{ customer.name }}``). Evaluation does
no I/O, so it is deterministic inside workflow code. Everything is compiled once
per source text and cached; validation compiles every expression of a flow so a
typo is an error on the canvas rather than a failed journey.

Limits keep a hostile or careless expression from hurting the worker: no
attribute starting with ``_``, no mutation, ``range`` capped, ``**`` and ``*``
refused when the result would be huge, templates bounded in output size.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes, pass_context
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.filters import do_format, do_indent
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: Names an expression or template may refer to.
CONTEXT_NAMES = frozenset({"customer", "event", "vars", "journey", "now"})
MAX_SOURCE = 4000
MAX_RANGE = 10_000
MAX_POWER_BITS = 4096
MAX_OUTPUT = 20_000


class ExpressionError(ValueError):
    """An expression or template that does not compile or cannot be evaluated."""


class MissingValue(ChainableUndefined):
    """A missing attribute: falsy, renders empty, and every comparison with it is false."""

    def _false(self, other: object) -> bool:
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _false  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, MissingValue)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return 0


_WIDTH = re.compile(r"%[-#0 +]*(\d+)|%[-#0 +]*\d*\.(\d+)|\{[^{}]*:[^{}]*?(\d+)[^{}]*\}")


def _check_widths(fmt: str) -> None:
    """Refuse format strings whose field widths would allocate without bound ('%099999999d')."""
    for match in _WIDTH.finditer(fmt):
        for group in match.groups():
            if group and int(group) > MAX_OUTPUT:
                raise SecurityError(f"format width {group} is larger than the limit of {MAX_OUTPUT}")


def _safe_center(value: Any, width: int = 80) -> str:
    if width > MAX_OUTPUT:
        raise SecurityError(f"center width {width} is larger than the limit of {MAX_OUTPUT}")
    return str(value).center(width)


def _safe_indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    if (isinstance(width, int) and width > 100) or (isinstance(width, str) and len(width) > 100):
        raise SecurityError("indent width too large")
    return str(do_indent(str(value), width, first, blank))


def _safe_format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_widths(value)
    return str(do_format(value, *args, **kwargs))


def _projected_size(method: str, text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """How long the result of ``text.<method>(*args)`` would be, computed without building it."""
    ints = [a for a in (*args, *kwargs.values()) if isinstance(a, int) and not isinstance(a, bool)]
    if method in ("ljust", "rjust", "center", "zfill"):
        return max([len(text), *ints[:1]])
    if method == "expandtabs":
        return len(text) * max([8, *ints[:1]])
    if method == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        return len(text) + text.count(args[0]) * max(0, len(args[1]) - len(args[0]))
    if method in ("format", "format_map"):
        return len(text) + max([0, *ints])
    return 0


def _checked_join(separator: str, items: Any) -> str:
    parts = [str(i) for i in items]
    if sum(map(len, parts)) + len(separator) * max(0, len(parts) - 1) > MAX_OUTPUT:
        raise SecurityError(f"joined text would be longer than the limit of {MAX_OUTPUT}")
    return separator.join(parts)


def _safe_join(context: Any, value: Any, d: str = "", attribute: Any = None) -> str:
    items = list(value)
    if attribute is not None:
        items = [context.environment.getitem(i, attribute) for i in items]
    return _checked_join(str(d), items)


def _safe_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(f"range of {len(result)} items is larger than the limit of {MAX_RANGE}")
    return result


class FlowSandbox(ImmutableSandboxedEnvironment):
    """Sandbox with size limits on the operators that can allocate without bound."""

    intercepted_binops = frozenset({"**", "*", "%"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # ``event.payload.items`` means the payload's field, not the dict method
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _check_widths(obj)
        return super().getattr(obj, attribute)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # str.format comes wrapped by the sandbox; the original bound method is __wrapped__
        owner = getattr(__obj, "__self__", None) or getattr(getattr(__obj, "__wrapped__", None), "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name == "join":
                __self.is_safe_callable(__obj)
                return _checked_join(owner, args[0] if args else ())
            if _projected_size(name, owner, args, kwargs) > MAX_OUTPUT:
                raise SecurityError(f"'{name}' would make text longer than the limit of {MAX_OUTPUT}")
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if (isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
                    and right * max(abs(left).bit_length(), 1) > MAX_POWER_BITS):
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        if operator_name == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > MAX_OUTPUT:
                    raise SecurityError("repetition result too large")
            return operator.mul(left, right)
        if operator_name == "%":
            if isinstance(left, str):
                _check_widths(left)
                values = right if isinstance(right, tuple) else (right,)
                if "*" in left and any(isinstance(v, int) and v > MAX_OUTPUT for v in values):
                    raise SecurityError(f"format width larger than the limit of {MAX_OUTPUT}")
            return operator.mod(left, right)
        return super().call_binop(context, operator_name, left, right)


_ENV = FlowSandbox(undefined=MissingValue, autoescape=False, cache_size=2000)
_ENV.globals = {"range": _safe_range}
_ENV.filters.update({"center": _safe_center, "indent": _safe_indent, "format": _safe_format,
                     "join": pass_context(_safe_join)})


def _check_source(source: str) -> None:
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"is {len(source)} characters long; the limit is {MAX_SOURCE}")


def _unknown(names: set[str]) -> None:
    unknown = sorted(names - CONTEXT_NAMES - set(_ENV.globals))
    if unknown:
        allowed = ", ".join(sorted(CONTEXT_NAMES))
        raise ExpressionError(f"unknown name {', '.join(repr(n) for n in unknown)}; use one of {allowed}")


def _loaded_names(node: nodes.Node) -> set[str]:
    found = [node, *node.find_all(nodes.Name)] if isinstance(node, nodes.Name) else node.find_all(nodes.Name)
    return {n.name for n in found if isinstance(n, nodes.Name) and n.ctx == "load"}


@lru_cache(maxsize=8192)
def check(source: str, kind: str = "expression") -> None:
    """Parse an expression (or template) and check the names it uses, without compiling it to code:
    what validation needs, at a fraction of the cost. Raises :class:`ExpressionError`."""
    _check_source(source)
    try:
        if kind == "template":
            ast = _ENV.parse(source)
            # statements ({% for %}, {% set %}) bind names of their own: let Jinja work out what is free
            _unknown(set(meta.find_undeclared_variables(ast)) if "{%" in source else _loaded_names(ast))
            return
        if not source.strip():
            raise ExpressionError("is empty; write an expression such as 'customer.orders_count > 0'")
        parser = Parser(_ENV, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError(f"unexpected '{parser.stream.current.value}' after the expression",
                                      parser.stream.current.lineno)
        _unknown(_loaded_names(expr))
    except TemplateSyntaxError as exc:
        where = f" on line {exc.lineno}" if kind == "template" else ""
        raise ExpressionError(f"syntax error{where}: {exc.message}") from None


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Any:
    """Compile an expression; raise :class:`ExpressionError` naming the problem."""
    check(source, "expression")
    try:
        return _ENV.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.message}") from None


@lru_cache(maxsize=4096)
def compile_template(source: str) -> Any:
    """Compile a message template; raise :class:`ExpressionError` naming the problem."""
    check(source, "template")
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"syntax error on line {exc.lineno}: {exc.message}") from None


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    """Evaluate an expression against a context (customer, event, vars, journey)."""
    try:
        return compile_expression(source)(**context)
    except (SecurityError, UndefinedError, TypeError, ValueError, ArithmeticError) as exc:
        if isinstance(exc, ExpressionError):
            raise
        raise ExpressionError(f"cannot evaluate {source!r}: {exc}") from None


def test(source: str, context: Mapping[str, Any]) -> bool:
    """Evaluate an expression as a condition (missing values are false)."""
    return bool(evaluate(source, context))


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render a template; the output is capped at MAX_OUTPUT characters."""
    try:
        out = str(compile_template(source).render(**context))
    except (SecurityError, UndefinedError, TypeError, ValueError, ArithmeticError) as exc:
        if isinstance(exc, ExpressionError):
            raise
        raise ExpressionError(f"cannot render template: {exc}") from None
    if len(out) > MAX_OUTPUT:
        raise ExpressionError(f"rendered text is {len(out)} characters; the limit is {MAX_OUTPUT}")
    return out
