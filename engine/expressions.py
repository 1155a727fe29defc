"""The one expression and template language of flows: Jinja2's immutable sandbox.

Conditions and filters are Jinja2 *expressions* (``customer.orders_count > 0``),
messages are Jinja2 *templates* (``你好 {{ customer.name }}``). Evaluation does
no I/O, so it is deterministic inside workflow code. Everything is compiled once
per source text and cached; validation compiles every expression of a flow so a
typo is an error on the canvas rather than a failed journey.

Limits keep a hostile or careless expression from hurting the worker (the
full list is in docs/security.md): no attribute starting with ``_`` (``__``
names are refused with an error), no mutation, bounded source length and
nesting, ``range`` capped, ``**``, ``*``, ``+``, ``~`` and ``%`` refused when the
result would be huge, and every evaluation gets an *operation budget*: calls,
filter applications and loop iterations are counted, and so are the characters
a template emits. The budget counts operations, never wall-clock time, so the
same expression on the same input succeeds or fails the same way on every
replay of a workflow.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from jinja2 import (
    ChainableUndefined,
    TemplateSyntaxError,
    meta,
    nodes,
    pass_context,
    pass_environment,
    pass_eval_context,
)
from jinja2.exceptions import SecurityError
from jinja2.filters import do_batch, do_format, do_indent, do_replace, do_tojson, do_wordwrap
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

#: Names an expression or template may refer to.
CONTEXT_NAMES = frozenset({"customer", "event", "vars", "journey", "now"})
MAX_SOURCE = 4000
MAX_RANGE = 10_000
MAX_POWER_BITS = 4096
MAX_OUTPUT = 20_000
#: operations (calls, filter applications, items iterated by loops and filters) per evaluation
MAX_STEPS = 100_000
#: size of any list or dict an expression builds (characters + items, nested), and of any text
MAX_VALUE = 100_000
MAX_TEXT = 1_000_000
#: characters a template may emit in all, macros and {% set %} blocks included
MAX_EMITTED = 100_000
#: nesting of brackets / unary operators in the source, depth of the parsed tree, nested loops
MAX_NESTING = 20
MAX_DEPTH = 64
MAX_LOOP_NESTING = 8
#: nested macro / loop(...) calls at run time
MAX_CALL_DEPTH = 32


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
    for arg in (*args, *kwargs.values()):
        _bounded(arg, "a format argument")
    return str(do_format(value, *args, **kwargs))


def _safe_replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: int | None = None) -> Any:
    text, old_text, new_text = str(value), str(old), str(new)
    times = text.count(old_text) if count is None or count < 0 else min(count, text.count(old_text))
    if len(text) + times * max(0, len(new_text) - len(old_text)) > MAX_TEXT:
        raise SecurityError(f"replace would make text longer than the limit of {MAX_TEXT}")
    return do_replace(eval_ctx, value, old, new, count)


def _safe_batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    if linecount > MAX_RANGE:
        raise SecurityError(f"batch size {linecount} is larger than the limit of {MAX_RANGE}")
    return do_batch(value, linecount, fill_with)


def _safe_tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Any:
    if indent is not None and not 0 <= indent <= 100:
        raise SecurityError("tojson indent must be between 0 and 100")
    return do_tojson(eval_ctx, value, indent)


def _safe_wordwrap(environment: Any, s: str, width: int = 79, break_long_words: bool = True,
                   wrapstring: str | None = None, break_on_hyphens: bool = True) -> str:
    lines = len(str(s)) // max(int(width), 1) + 1 + str(s).count("\n")
    if wrapstring is not None and lines * len(str(wrapstring)) > MAX_TEXT:
        raise SecurityError(f"wordwrap would make text longer than the limit of {MAX_TEXT}")
    return do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


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


# --- the operation budget -------------------------------------------------------------------------


class _Budget:
    """What one evaluation has used so far: operations, characters emitted, call depth."""

    __slots__ = ("depth", "emitted", "steps")

    def __init__(self) -> None:
        self.steps = 0
        self.emitted = 0
        self.depth = 0


_BUDGET: ContextVar[_Budget | None] = ContextVar("tideflow_expression_budget", default=None)


def _charge(steps: int = 1) -> _Budget:
    budget = _BUDGET.get()
    if budget is None:
        # outside evaluate()/render(): Jinja's compile-time constant folding lands here; refusing
        # makes it leave the work to run time, where it is counted
        raise SecurityError("sandbox operations run only inside an evaluation")
    budget.steps += steps
    if budget.steps > MAX_STEPS:
        raise SecurityError(f"takes more than {MAX_STEPS} operations (loops, filters, calls); simplify it")
    return budget


def _charge_if_evaluating(steps: int) -> None:
    if steps and _BUDGET.get() is not None:
        _charge(steps)


def _measure(value: Any, limit: int = MAX_VALUE) -> tuple[int, int]:
    """Characters plus items of ``value``, nested (shared parts counted each time they appear, as
    printing would), and how many items it looked at; stops counting once past ``limit``."""
    total = walked = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        walked += 1
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1
            stack.extend(item)
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, range):
            total += len(item)
        else:
            total += 1
    return total, walked


def _size(value: Any, limit: int = MAX_VALUE) -> int:
    return _measure(value, limit)[0]


def _bounded(value: Any, what: str = "value") -> Any:
    """``value`` if it is within the size limits; building it costs one operation per 1,000
    characters, and checking a list or dict one per 10 items looked at."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise SecurityError(f"{what} would be longer than the limit of {MAX_TEXT} characters")
        _charge_if_evaluating(len(value) // 1000)
    elif isinstance(value, list | tuple | dict | set | frozenset):
        size, walked = _measure(value)
        _charge_if_evaluating(walked // 10)
        if size > MAX_VALUE:
            raise SecurityError(f"{what} would be larger than the limit of {MAX_VALUE} characters/items")
    return value


def _counted(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        _charge()
        yield item


def _loop(items: Any) -> Iterator[Any]:
    """What a ``{% for %}`` iterates: the same items, one operation each."""
    return _counted(items)


def _concat(*parts: Any) -> str:
    """The ``~`` operator and mixed text output: ``str`` of each part, joined, size-checked."""
    texts = [str(_bounded(part)) for part in parts]
    total = sum(map(len, texts))
    if total > MAX_TEXT:
        raise SecurityError(f"joined text would be longer than the limit of {MAX_TEXT}")
    _charge_if_evaluating(total // 1000)
    return "".join(texts)


def _emit(value: Any) -> Any:
    """A ``{{ ... }}`` of a template: counts the characters it will print."""
    budget = _charge()
    budget.emitted += len(value) if isinstance(value, str) else _size(value)
    if budget.emitted > MAX_EMITTED:
        raise SecurityError(f"the template prints more than {MAX_EMITTED} characters")
    return value


def _metered(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that counts: one operation plus one per item of a list/dict/range it is given, one per
    item a lazy result yields; its result is size-checked."""
    skip = 0 if _PassArg.from_obj(fn) is None else 1

    @functools.wraps(fn)
    def filter_(*args: Any, **kwargs: Any) -> Any:
        value = args[skip] if len(args) > skip else None
        _charge(1 + (len(value) if isinstance(value, list | tuple | dict | range | set) else 0))
        result = fn(*args, **kwargs)
        if isinstance(result, Iterator) and not isinstance(result, str):
            return _counted(result)
        return _bounded(result, "the filter's result")

    return filter_


#: internal filters the metering inserts; a ':' makes them impossible to name in an expression
_INTERNAL = {"tideflow:loop": _loop, "tideflow:concat": _concat, "tideflow:emit": _emit, "tideflow:value": _bounded}


class _Metering(NodeTransformer):
    """Rewrites a parsed template so loops, ``~``, literals and output go through the budget.

    The hooks are applied as filters with names no source can spell: Jinja calls a filter
    directly, without the sandbox's per-call checks, so metering costs little."""

    def _call(self, name: str, args: list[nodes.Expr], node: nodes.Node) -> nodes.Filter:
        return nodes.Filter(args[0], name, args[1:], [], None, None, lineno=node.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        assert isinstance(node.iter, nodes.Expr)
        node.iter = self._call("tideflow:loop", [node.iter], node)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._call("tideflow:concat", list(node.nodes), node)

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load":
            return node
        return self._call("tideflow:value", [node], node)

    visit_List = visit_Tuple = visit_Dict = _literal

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [child if isinstance(child, nodes.TemplateData) else self._call("tideflow:emit", [child], node)
                      for child in node.nodes]
        return node


class FlowSandbox(ImmutableSandboxedEnvironment):
    """Sandbox with size limits on the operators that can allocate without bound, and an operation budget."""

    intercepted_binops = frozenset({"**", "*", "%", "+"})

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        metered = _Metering().visit(source)
        metered.set_environment(self)
        return super()._generate(metered, name, filename, defer_init=defer_init)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        if attribute.startswith("_"):  # Python internals: an escape attempt, not a missing field
            raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__} value is not allowed")
        return super().unsafe_undefined(obj, attribute)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # ``event.payload.items`` means the payload's field, not the dict method
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _check_widths(obj)
        return super().getattr(obj, attribute)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _charge()
        # str.format comes wrapped by the sandbox; the original bound method is __wrapped__
        owner = getattr(__obj, "__self__", None) or getattr(getattr(__obj, "__wrapped__", None), "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name == "join":
                __self.is_safe_callable(__obj)
                return _checked_join(owner, args[0] if args else ())
            if _projected_size(name, owner, args, kwargs) > MAX_OUTPUT:
                raise SecurityError(f"'{name}' would make text longer than the limit of {MAX_OUTPUT}")
            if name in ("format", "format_map"):
                for arg in (*args, *kwargs.values()):
                    _bounded(arg, "a format argument")
        if budget.depth >= MAX_CALL_DEPTH:
            raise SecurityError(f"calls nest deeper than {MAX_CALL_DEPTH} (a recursive macro or loop?)")
        budget.depth += 1
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        return _bounded(result, "the call's result")

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if (isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
                    and right * max(abs(left).bit_length(), 1) > MAX_POWER_BITS):
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        if operator_name == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and times > 0 and (
                        len(seq) * times > MAX_OUTPUT or _size(seq) * times > MAX_VALUE):
                    raise SecurityError("repetition result too large")
            if (isinstance(left, int) and isinstance(right, int)
                    and left.bit_length() + right.bit_length() > MAX_POWER_BITS):
                raise SecurityError("product too large")
            return operator.mul(left, right)
        if operator_name == "+":
            if isinstance(left, str) and isinstance(right, str):
                if len(left) + len(right) > MAX_TEXT:
                    raise SecurityError(f"sum would be longer than the limit of {MAX_TEXT} characters")
                return _bounded(operator.add(left, right))
            if isinstance(left, list | tuple) and isinstance(right, list | tuple) and (
                    _size(left) + _size(right) > MAX_VALUE):
                raise SecurityError(f"sum would be larger than the limit of {MAX_VALUE} characters/items")
            return operator.add(left, right)
        if operator_name == "%":
            if isinstance(left, str):
                _check_widths(left)
                values = right if isinstance(right, tuple) else (right,)
                if "*" in left and any(isinstance(v, int) and v > MAX_OUTPUT for v in values):
                    raise SecurityError(f"format width larger than the limit of {MAX_OUTPUT}")
                _bounded(right, "a format argument")
            return operator.mod(left, right)
        return super().call_binop(context, operator_name, left, right)


_ENV = FlowSandbox(undefined=MissingValue, autoescape=False, cache_size=2000)
_ENV.globals = {"range": _safe_range}
_ENV.filters.update({"center": _safe_center, "indent": _safe_indent, "format": _safe_format,
                     "join": pass_context(_safe_join), "replace": pass_eval_context(_safe_replace),
                     "batch": _safe_batch, "tojson": pass_eval_context(_safe_tojson),
                     "wordwrap": pass_environment(_safe_wordwrap)})
#: ``random`` would differ between a workflow and its replay
_ENV.filters.pop("random", None)
_ENV.filters = {**{name: _metered(fn) for name, fn in _ENV.filters.items()}, **_INTERNAL}


def _check_source(source: str) -> None:
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"is {len(source)} characters long; the limit is {MAX_SOURCE}")


_OPENERS = frozenset({"lparen", "lbracket", "lbrace"})
_CLOSERS = frozenset({"rparen", "rbracket", "rbrace"})


def _check_nesting(source: str, kind: str) -> None:
    """Refuse deep nesting before parsing it: the parser and code generator recurse per level, and
    running out of stack depends on the caller, which a deterministic check must not."""
    depth = run = 0
    for token in _ENV._tokenize(source, None, None, "variable" if kind == "expression" else None):
        if token.type in _OPENERS:
            depth += 1
        elif token.type in _CLOSERS:
            depth = max(0, depth - 1)
        run = run + 1 if token.type in ("add", "sub") or token.test("name:not") else 0
        if depth > MAX_NESTING or run > MAX_NESTING:
            raise ExpressionError(f"nests brackets or operators more than {MAX_NESTING} deep; simplify it")


def _check_tree(tree: nodes.Node) -> None:
    """Refuse ``__dunder__`` attributes and trees too deep to compile, walking without recursion."""
    stack: list[tuple[nodes.Node, int, int]] = [(tree, 1, 0)]
    while stack:
        node, depth, loops = stack.pop()
        if isinstance(node, nodes.Getattr) and node.attr.startswith("__"):
            raise ExpressionError(f"the attribute {node.attr!r} is not allowed: names starting with '__' "
                                  "are Python internals; for a field of that name write ['" + node.attr + "']")
        loops += isinstance(node, nodes.For | nodes.Macro | nodes.CallBlock | nodes.FilterBlock)
        if depth > MAX_DEPTH or loops > MAX_LOOP_NESTING:
            raise ExpressionError(f"is nested too deeply (more than {MAX_DEPTH} levels or {MAX_LOOP_NESTING} "
                                  "nested loops/macros); simplify it")
        stack.extend((child, depth + 1, loops) for child in node.iter_child_nodes())


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
        _check_nesting(source, kind)
        if kind == "template":
            ast = _ENV.parse(source)
            _check_tree(ast)
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
        _check_tree(expr)
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
    except (SyntaxError, RecursionError, MemoryError) as exc:  # generated code Python cannot compile
        raise ExpressionError(f"is too complex to compile ({type(exc).__name__}); simplify it") from None


@lru_cache(maxsize=4096)
def compile_template(source: str) -> Any:
    """Compile a message template; raise :class:`ExpressionError` naming the problem."""
    check(source, "template")
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"syntax error on line {exc.lineno}: {exc.message}") from None
    except (SyntaxError, RecursionError, MemoryError) as exc:  # generated code Python cannot compile
        raise ExpressionError(f"is too complex to compile ({type(exc).__name__}); simplify it") from None


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    """Evaluate an expression against a context (customer, event, vars, journey).

    Any failure, a limit included, is an :class:`ExpressionError`; nothing else escapes."""
    compiled = compile_expression(source)
    token = _BUDGET.set(_Budget())
    try:
        return compiled(**context)
    except ExpressionError:
        raise
    except Exception as exc:  # a sandboxed expression may fail in any way; callers get one error type
        raise ExpressionError(f"cannot evaluate {source!r}: {_reason(exc)}") from None
    finally:
        _BUDGET.reset(token)


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "it recurses too deeply"
    if isinstance(exc, MemoryError):
        return "it needs too much memory"
    return str(exc) or type(exc).__name__


def test(source: str, context: Mapping[str, Any]) -> bool:
    """Evaluate an expression as a condition (missing values are false)."""
    return bool(evaluate(source, context))


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render a template; the output is capped at MAX_OUTPUT characters. Any failure is an
    :class:`ExpressionError`."""
    template = compile_template(source)
    token = _BUDGET.set(_Budget())
    try:
        out = str(template.render(**context))
    except ExpressionError:
        raise
    except Exception as exc:  # a sandboxed template may fail in any way; callers get one error type
        raise ExpressionError(f"cannot render template: {_reason(exc)}") from None
    finally:
        _BUDGET.reset(token)
    if len(out) > MAX_OUTPUT:
        raise ExpressionError(f"rendered text is {len(out)} characters; the limit is {MAX_OUTPUT}")
    return out
