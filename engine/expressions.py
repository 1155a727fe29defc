"""The one expression and template language of flows: Jinja2's immutable sandbox.

Conditions and filters are Jinja2 *expressions* (``customer.orders_count > 0``),
messages are Jinja2 *templates* (``你好 {{ customer.name }}``). Evaluation does
no I/O, so it is deterministic inside workflow code. Everything is compiled once
per source text and cached; validation compiles every expression of a flow so a
typo is an error on the canvas rather than a failed journey.

Limits keep a hostile or careless expression from hurting the process that evaluates it (the
full list is in docs/security.md): no attribute starting with ``_`` (``__`` names are refused with an
error), no mutation, bounded source length and nesting, ``range`` capped, sizes of every value built
bounded, and every evaluation gets an *operation budget* that every operation is charged to: each
syntax node a loop body, macro or template runs, each item iterated, each comparison, ``in``,
slice, ``~``/``+``, repetition, filter, test and call, plus the size of what they touch (a step per
1,000 characters scanned or copied, per 100 searched, per item of a list). The budget counts
operations, never wall-clock time, so the same expression on the same input succeeds or fails the
same way on every replay of a workflow; :func:`shared_budget` lets several evaluations (one node's,
or a chain of logic nodes) share one bound.
"""

from __future__ import annotations

import functools
import operator
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, cast

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
from jinja2.filters import do_batch, do_format, do_indent, do_replace, do_tojson, do_wordwrap, sync_do_sum
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

from engine.text import Msg, MsgError, message_of, verbatim

#: Names an expression or template may refer to.
CONTEXT_NAMES = frozenset({"customer", "event", "vars", "journey", "now"})
MAX_SOURCE = 4000
MAX_RANGE = 10_000
MAX_POWER_BITS = 4096
MAX_OUTPUT = 20_000
#: operations per evaluation: every syntax node a loop, macro or template runs, every item iterated, every
#: comparison, lookup, filter, test and call, plus the size of what they touch (see CHARS_PER_STEP)
MAX_STEPS = 100_000
#: characters scanned, compared, copied or built per operation charged
CHARS_PER_STEP = 1000
#: searching text (``in``, ``count``, ``replace``, ``split`` …) can take ten times longer per character
#: than copying it (Python's substring search on repetitive text): it is charged ten times as much
SEARCH_FACTOR = 10
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


class ExpressionError(MsgError):
    """An expression or template that does not compile or cannot be evaluated."""


class ExpressionTooCostly(ExpressionError):
    """An evaluation that went past its bound of operations, size or nesting: it stopped there."""


class CostLimitExceeded(SecurityError):
    """Raised inside an evaluation when the operation budget is used up."""


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
                raise SecurityError(Msg("format width %(group)s is larger than the limit of %(limit)s",
                                        group=group, limit=MAX_OUTPUT))


def _safe_center(value: Any, width: int = 80) -> str:
    if width > MAX_OUTPUT:
        raise SecurityError(Msg("center width %(width)s is larger than the limit of %(limit)s",
                                width=width, limit=MAX_OUTPUT))
    return str(value).center(width)


def _safe_indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    if (isinstance(width, int) and width > 100) or (isinstance(width, str) and len(width) > 100):
        raise SecurityError(Msg("indent width too large"))
    return str(do_indent(str(value), width, first, blank))


def _safe_format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_widths(value)
    for arg in (*args, *kwargs.values()):
        _bounded(arg, FORMAT_ARGUMENT)
    return str(do_format(value, *args, **kwargs))


def _safe_replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: int | None = None) -> Any:
    text, old_text, new_text = str(value), str(old), str(new)
    times = text.count(old_text) if count is None or count < 0 else min(count, text.count(old_text))
    if len(text) + times * max(0, len(new_text) - len(old_text)) > MAX_TEXT:
        raise SecurityError(Msg("replace would make text longer than the limit of %(limit)s",
                                limit=MAX_TEXT))
    return do_replace(eval_ctx, value, old, new, count)


def _safe_batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    if linecount > MAX_RANGE:
        raise SecurityError(Msg("batch size %(linecount)s is larger than the limit of %(limit)s",
                                linecount=linecount, limit=MAX_RANGE))
    return do_batch(value, linecount, fill_with)


def _safe_tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Any:
    if indent is not None and not 0 <= indent <= 100:
        raise SecurityError(Msg("tojson indent must be between 0 and 100"))
    return do_tojson(eval_ctx, value, indent)


def _safe_wordwrap(environment: Any, s: str, width: int = 79, break_long_words: bool = True,
                   wrapstring: str | None = None, break_on_hyphens: bool = True) -> str:
    lines = len(str(s)) // max(int(width), 1) + 1 + str(s).count("\n")
    if wrapstring is not None and lines * len(str(wrapstring)) > MAX_TEXT:
        raise SecurityError(Msg("wordwrap would make text longer than the limit of %(limit)s",
                                limit=MAX_TEXT))
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
        raise SecurityError(Msg("joined text would be longer than the limit of %(limit)s",
                                limit=MAX_OUTPUT))
    return separator.join(parts)


def _safe_join(context: Any, value: Any, d: str = "", attribute: Any = None) -> str:
    items = list(value)
    if attribute is not None:
        items = [context.environment.getitem(i, attribute) for i in items]
    return _checked_join(str(d), items)


def _safe_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(Msg("range of %(count)s items is larger than the limit of %(limit)s",
                                count=len(result), limit=MAX_RANGE))
    return result


# --- the operation budget -------------------------------------------------------------------------
#
# One *step* is about one Jinja operation (a name looked up, an attribute read, a comparison of two
# small values). Work that grows with the size of a value is charged by that size: a step per
# CHARS_PER_STEP characters scanned, copied, compared or searched, and a step per item of a list or
# dict. Every syntax node a loop body, a macro or the template holds is charged each time it may run
# (its *static weight*), so no operation is free, however cheap: a loop of 100,000 cheap comparisons
# costs as much as a loop of 100,000 calls. Charges are made before the work when its size is known
# up front (searching, slicing, repeating, formatting) and right after it otherwise.


class Budget:
    """What evaluations have used so far: operations, characters emitted, call depth.

    An evaluation makes its own budget unless one is active (see :func:`shared_budget`), so the
    expressions of one flow node, or of a chain of logic nodes a workflow runs without waiting, can
    share one bound."""

    __slots__ = ("depth", "emitted", "limit", "steps")

    def __init__(self, limit: int | None = None) -> None:
        self.steps = 0
        self.emitted = 0
        self.depth = 0
        self.limit = MAX_STEPS if limit is None else limit


_BUDGET: ContextVar[Budget | None] = ContextVar("tideflow_expression_budget", default=None)


@contextmanager
def shared_budget(budget: Budget | None = None) -> Iterator[Budget]:
    """Make every evaluation inside the block charge ``budget`` (a new one if not given)."""
    shared = budget if budget is not None else Budget()
    token = _BUDGET.set(shared)
    try:
        yield shared
    finally:
        _BUDGET.reset(token)


def _charge(steps: int = 1) -> Budget:
    budget = _BUDGET.get()
    if budget is None:
        # outside evaluate()/render(): Jinja's compile-time constant folding lands here; refusing
        # makes it leave the work to run time, where it is counted
        raise SecurityError(Msg("sandbox operations run only inside an evaluation"))
    budget.steps += steps
    if budget.steps > budget.limit:
        raise CostLimitExceeded(
            f"takes more than {budget.limit} operations (every comparison, lookup, loop item, filter, call and "
            f"each {CHARS_PER_STEP} characters searched, compared or built count); simplify it")
    return budget


def charge(steps: int) -> None:
    """Charge work done on an expression's behalf (e.g. a decision table's cells) to the active budget;
    :class:`ExpressionTooCostly` when that uses it up."""
    if steps > 0 and _BUDGET.get() is not None:
        try:
            _charge(steps)
        except CostLimitExceeded as exc:
            raise ExpressionTooCostly(message_of(exc)) from None


def _charge_if_evaluating(steps: int) -> None:
    if steps and _BUDGET.get() is not None:
        _charge(steps)


def _measure(value: Any, limit: int = MAX_VALUE) -> tuple[int, int]:
    """Characters plus items of ``value``, nested (shared parts counted each time they appear, as
    printing would), and the steps it takes to walk it (an item each, a step per CHARS_PER_STEP
    characters); stops once past ``limit``, so the walk never costs more than it charges."""
    total = work = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        work += 1
        if isinstance(item, str):
            total += len(item)
            work += len(item) // CHARS_PER_STEP
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1
            stack.extend(item)
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, range):
            total += len(item)
        elif isinstance(item, int):  # turning a big number into text takes time quadratic in its size
            total += 1
            work += item.bit_length() ** 2 >> 16
        else:
            total += 1
    return total, work


def _size(value: Any, limit: int = MAX_VALUE) -> int:
    return _measure(value, limit)[0]


def _work(value: Any) -> int:
    """Steps to scan ``value`` once (strings by length, lists and dicts item by item, nested)."""
    if isinstance(value, str):
        return len(value) // CHARS_PER_STEP
    if isinstance(value, int):
        return value.bit_length() ** 2 >> 16
    if isinstance(value, list | tuple | dict | set | frozenset):
        return _measure(value)[1]
    return 0


#: what a size limit names (built once: the checks run on every call of an evaluation)
VALUE = Msg("a value")
FORMAT_ARGUMENT = Msg("a format argument")
CALL_RESULT = Msg("the call's result")
FILTER_RESULT = Msg("the filter's result")


def _bounded(value: Any, what: Msg = VALUE) -> Any:
    """``value`` if it is within the size limits; what it costs to build is charged by its size."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise SecurityError(Msg("%(what)s would be longer than the limit of %(limit)s characters",
                                    what=what, limit=MAX_TEXT))
        _charge_if_evaluating(len(value) // CHARS_PER_STEP)
    elif isinstance(value, list | tuple | dict | set | frozenset):
        size, work = _measure(value)
        _charge_if_evaluating(work)
        if size > MAX_VALUE:
            raise SecurityError(Msg("%(what)s would be larger than the limit of %(limit)s "
                                    "characters/items",
                                    what=what, limit=MAX_VALUE))
    return value


def _counted(items: Iterable[Any], each: int = 1) -> Iterator[Any]:
    for item in items:
        _charge(each)
        yield item


def _loop(items: Any, each: int = 1) -> Iterator[Any]:
    """What a ``{% for %}`` iterates: the same items, ``each`` operations apiece (the loop's filter)."""
    _charge()
    return _counted(items, each)


def _static(value: Any, steps: int) -> None:
    """Charge the static weight of a loop body, macro body or whole template as it starts to run."""
    _charge(steps)


def _concat(*parts: Any) -> str:
    """The ``~`` operator and mixed text output: ``str`` of each part, joined, size-checked."""
    texts = [str(_bounded(part)) for part in parts]
    total = sum(map(len, texts))
    if total > MAX_TEXT:
        raise SecurityError(Msg("joined text would be longer than the limit of %(limit)s",
                                limit=MAX_TEXT))
    _charge(1 + total // CHARS_PER_STEP)
    return "".join(texts)


def _emit(value: Any) -> Any:
    """What a template prints (a ``{{ ... }}`` or its literal text): counts the characters."""
    size, work = (len(value), len(value) // CHARS_PER_STEP) if isinstance(value, str) else _measure(value)
    budget = _charge(1 + work)
    budget.emitted += size
    if budget.emitted > MAX_EMITTED:
        raise SecurityError(Msg("the template prints more than %(limit)s characters",
                                limit=MAX_EMITTED))
    return value


def _printed(value: Any, characters: int) -> None:
    """Literal text a template prints: counted like ``{{ … }}`` output, without a call per piece."""
    budget = _charge(1 + characters // CHARS_PER_STEP)
    budget.emitted += characters
    if budget.emitted > MAX_EMITTED:
        raise SecurityError(Msg("the template prints more than %(limit)s characters",
                                limit=MAX_EMITTED))


def _compare_work(op: str, left: Any, right: Any) -> int:
    """Steps a comparison or membership test of these two values takes, at most."""
    if op in ("in", "notin"):
        if isinstance(right, str):
            return (len(right) + (len(left) if isinstance(left, str) else 0)) * SEARCH_FACTOR // CHARS_PER_STEP
        if isinstance(right, dict | set | frozenset):
            return _work(left)  # hashing the key
        if isinstance(right, list | tuple):
            return _work(right) + len(right) * (_work(left) if isinstance(left, list | tuple | dict) else 0)
        return 0
    if isinstance(left, str) and isinstance(right, str):
        return min(len(left), len(right)) // CHARS_PER_STEP
    for kind in (list | tuple, dict):
        if isinstance(left, kind) and isinstance(right, kind):
            if op in ("eq", "ne") and len(left) != len(right):
                return 0
            return _work(left if len(left) <= len(right) else right)
    return 0


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lteq": operator.le, "gt": operator.gt,
    "gteq": operator.ge, "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}


def _compare(value: Any, *chain: Any) -> Any:
    """``value op1 operand1 op2 operand2 …`` with every comparison charged by the size of what it compares.

    As in Python, a chain stops at the first false comparison (all operands are evaluated first)."""
    left = value
    result: Any = True
    for i in range(0, len(chain), 2):
        op, right = chain[i], chain[i + 1]
        _charge(1 + _compare_work(op, left, right))
        result = _OPERATORS[op](left, right)
        if not result:
            return result
        left = right
    return result


def _slice(value: Any, start: Any, stop: Any, step: Any) -> Any:
    """``value[start:stop:step]``: charged by the length of the copy, before it is made."""
    _charge()
    cut = slice(start, stop, step)
    if isinstance(value, str | list | tuple):
        length = len(range(*cut.indices(len(value))))
        _charge(length // CHARS_PER_STEP if isinstance(value, str) else length)
    return _ENV.getitem(value, cut)


#: filters whose work does not grow with their input (no charge for the input's size)
_FLAT_FILTERS = frozenset({"length", "count", "first", "last", "default", "d", "attr", "safe", "abs",
                           "round", "items", "map", "select", "reject", "selectattr",
                           "rejectattr", "batch", "slice"})
#: filters that sort (n log n comparisons) or call back per item
_SORTING_FILTERS = frozenset({"sort", "dictsort", "unique", "groupby", "min", "max"})
#: filters that run regular expressions or pure-Python text processing: more work per character
_TEXT_HEAVY_FILTERS = {"urlize": 400, "title": 250, "wordwrap": 300, "striptags": 60, "wordcount": 45,
                       "urlencode": 20, "pprint": 20, "indent": 50, "truncate": 4, "xmlattr": 4, "tojson": 4,
                       "capitalize": 2, "trim": 2, "format": 2, "escape": 2, "e": 2, "forceescape": 2,
                       "upper": 2, "lower": 2, "string": 2, "replace": SEARCH_FACTOR}
#: tests whose work does not depend on the size of their arguments
_FLAT_TESTS = frozenset({"defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number",
                         "string", "mapping", "iterable", "sequence", "callable", "sameas", "escaped", "filter",
                         "test", "even", "odd", "divisibleby"})


def _metered(name: str, fn: Callable[..., Any], *, test: bool = False) -> Callable[..., Any]:
    """A filter or test that counts: one operation, plus the size of the values it is given (scaled
    for sorting and text-heavy ones), plus one per item a lazy result yields; its result is size-checked."""
    skip = 0 if _PassArg.from_obj(fn) is None else 1
    flat = name in (_FLAT_TESTS if test else _FLAT_FILTERS)
    factor = _TEXT_HEAVY_FILTERS.get(name, 1)
    sorting = name in _SORTING_FILTERS

    @functools.wraps(fn)
    def metered(*args: Any, **kwargs: Any) -> Any:
        if flat:
            _charge()
        else:
            values = [*args[skip:], *kwargs.values()]
            if sorting and values and isinstance(values[0], Iterator):
                args = (*args[:skip], list(_counted(values[0])), *args[skip + 1:])
                values[0] = args[skip]
            if test and name == "in" and len(values) == 2:  # ``x is in y``, ``select('in', y)``: as the operator
                work = _compare_work("in", values[0], values[1])
            else:
                work = sum(_work(v) + (len(v) if isinstance(v, range) else 0) for v in values)
            if name == "int" and values and isinstance(values[0], str):  # parsing digits: quadratic
                work += len(values[0]) ** 2 >> 14
            if sorting and values and isinstance(values[0], Sized):
                work *= max(1, len(values[0]).bit_length())
            _charge(1 + work * factor)
        result = fn(*args, **kwargs)
        if test:
            return result
        if isinstance(result, Iterator) and not isinstance(result, str):
            return _counted(result)
        return _bounded(result, FILTER_RESULT)

    return metered


def _safe_sum(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    if not isinstance(start, int | float):
        raise SecurityError(Msg("sum adds numbers; its start must be a number (join texts with 'join')"))
    return sync_do_sum(environment, iterable, attribute, start)


#: internal filters the metering inserts; a ':' makes them impossible to name in an expression
_INTERNAL = {"tideflow:loop": _loop, "tideflow:concat": _concat, "tideflow:emit": _emit,
             "tideflow:value": _bounded, "tideflow:compare": _compare, "tideflow:slice": _slice,
             "tideflow:static": _static, "tideflow:printed": _printed}
#: syntax nodes the metering adds or that run once per use: not part of a body's static weight
_UNWEIGHTED = (nodes.Template, nodes.Output, nodes.TemplateData)


#: syntax nodes that go through the sandbox's checks (attribute and item look-ups, calls, filters)
_LOOKUPS = (nodes.Getattr, nodes.Getitem, nodes.Call, nodes.Filter, nodes.Test)


def _weight(body: Iterable[nodes.Node]) -> int:
    """How many syntax nodes a body holds (look-ups count twice): an upper bound of the cheap
    operations one run of it does."""
    count = 0
    for top in body:
        for node in (top, *top.find_all(nodes.Node)):
            count += 0 if isinstance(node, _UNWEIGHTED) else 2 if isinstance(node, _LOOKUPS) else 1
    return count


class _Metering(NodeTransformer):
    """Rewrites a parsed template so every operation goes through the budget.

    Loops, macros and the template itself charge their static weight each time they run; comparisons,
    ``in``, slices, ``~``, literals, filters, tests and output are charged by the size of what they
    touch. The hooks are applied as filters with names no source can spell: Jinja calls a filter
    directly, without the sandbox's per-call checks, so metering costs little."""

    def _call(self, name: str, args: list[nodes.Expr], node: nodes.Node) -> nodes.Filter:
        return nodes.Filter(args[0], name, args[1:], [], None, None, lineno=node.lineno)

    def _weigh(self, body: list[nodes.Node], node: nodes.Node, extra: int = 0) -> list[nodes.Node]:
        steps = _weight(body) + extra
        charge = nodes.ExprStmt(self._call("tideflow:static", [nodes.Const(None), nodes.Const(steps)], node),
                                lineno=node.lineno)
        return [charge, *body]

    def visit_Template(self, node: nodes.Template) -> nodes.Node:
        self.generic_visit(node)
        node.body = self._weigh(node.body, node)
        return node

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        assert isinstance(node.iter, nodes.Expr)
        test = 0 if node.test is None else _weight([node.test]) + 1
        node.iter = self._call("tideflow:loop", [node.iter, nodes.Const(1 + test)], node)
        node.body = self._weigh(node.body, node)
        return node

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        self.generic_visit(node)
        node.body = self._weigh(node.body, node, _weight(node.defaults))
        return node

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        self.generic_visit(node)
        node.body = self._weigh(node.body, node, _weight(node.defaults))
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._call("tideflow:concat", list(node.nodes), node)

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        chain: list[nodes.Expr] = [node.expr]
        for operand in node.ops:
            chain += [nodes.Const(operand.op), operand.expr]
        return self._call("tideflow:compare", chain, node)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        if isinstance(node.arg, nodes.Slice):
            bounds = [part if part is not None else nodes.Const(None)
                      for part in (node.arg.start, node.arg.stop, node.arg.step)]
            return self._call("tideflow:slice", [node.node, *bounds], node)
        return node

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load":
            return node
        return self._call("tideflow:value", [node], node)

    visit_List = visit_Tuple = visit_Dict = _literal

    def visit_Output(self, node: nodes.Output) -> nodes.Node | list[nodes.Node]:
        self.generic_visit(node)
        node.nodes = [child if isinstance(child, nodes.TemplateData) else self._call("tideflow:emit", [child], node)
                      for child in node.nodes]
        literal = sum(len(child.data) for child in node.nodes if isinstance(child, nodes.TemplateData))
        if not literal:
            return node
        # the literal text printed: counted once per output, as it is printed
        count = nodes.ExprStmt(self._call("tideflow:printed", [nodes.Const(None), nodes.Const(literal)], node),
                               lineno=node.lineno)
        return [count, node]


class FlowSandbox(ImmutableSandboxedEnvironment):
    """Sandbox with size limits on the operators that can allocate without bound, and an operation budget."""

    intercepted_binops = frozenset({"**", "*", "%", "+", "-", "/", "//"})
    intercepted_unops = frozenset({"-", "+"})

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        metered = _Metering().visit(source)
        metered.set_environment(self)
        return super()._generate(metered, name, filename, defer_init=defer_init)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        if attribute.startswith("_"):  # Python internals: an escape attempt, not a missing field
            raise SecurityError(Msg("access to attribute '%(attribute)s' of a %(type)s value is not "
                                    "allowed",
                                    attribute=attribute, type=type(obj).__name__))
        return super().unsafe_undefined(obj, attribute)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # ``event.payload.items`` means the payload's field, not the dict method
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _check_widths(obj)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str):  # hashing the key
            _charge_if_evaluating(len(argument) // CHARS_PER_STEP)
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # the call itself, what it is given, and what a method scans of the value it belongs to
        owner = getattr(__obj, "__self__", None) or getattr(getattr(__obj, "__wrapped__", None), "__self__", None)
        # a text method may search (count, find, replace, split); a list or dict method at most walks once
        work = 8 * sum(_work(a) for a in (*args, *kwargs.values())) + (
            SEARCH_FACTOR * _work(owner) if isinstance(owner, str) else
            _work(owner) if isinstance(owner, list | tuple | dict) else 0)
        budget = _charge(1 + work)
        # str.format comes wrapped by the sandbox; the original bound method is __wrapped__
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name == "join":
                __self.is_safe_callable(__obj)
                return _checked_join(owner, _counted(args[0]) if args else ())
            if _projected_size(name, owner, args, kwargs) > MAX_OUTPUT:
                raise SecurityError(Msg("'%(name)s' would make text longer than the limit of %(limit)s",
                                        name=name, limit=MAX_OUTPUT))
            if name in ("format", "format_map"):
                for arg in (*args, *kwargs.values()):
                    _bounded(arg, FORMAT_ARGUMENT)
        if budget.depth >= MAX_CALL_DEPTH:
            raise SecurityError(Msg("calls nest deeper than %(limit)s (a recursive macro or loop?)",
                                    limit=MAX_CALL_DEPTH))
        budget.depth += 1
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        return _bounded(result, CALL_RESULT)

    def call_unop(self, context: Any, operator_name: str, arg: Any) -> Any:
        _charge()
        return super().call_unop(context, operator_name, arg)

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        _charge()
        if operator_name == "**":
            if (isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
                    and right * max(abs(left).bit_length(), 1) > MAX_POWER_BITS):
                raise SecurityError(Msg("exponent too large"))
            return operator.pow(left, right)
        if operator_name == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and times > 0:
                    if len(seq) * times > MAX_OUTPUT or _size(seq) * times > MAX_VALUE:
                        raise SecurityError(Msg("repetition result too large"))
                    _charge(len(seq) * times // CHARS_PER_STEP if isinstance(seq, str) else len(seq) * times)
            if (isinstance(left, int) and isinstance(right, int)
                    and left.bit_length() + right.bit_length() > MAX_POWER_BITS):
                raise SecurityError(Msg("product too large"))
            return operator.mul(left, right)
        if operator_name == "+":
            if isinstance(left, str) and isinstance(right, str):
                if len(left) + len(right) > MAX_TEXT:
                    raise SecurityError(Msg("sum would be longer than the limit of %(limit)s characters",
                                            limit=MAX_TEXT))
                return _bounded(operator.add(left, right))
            if isinstance(left, list | tuple) and isinstance(right, list | tuple):
                (left_size, left_work), (right_size, right_work) = _measure(left), _measure(right)
                if left_size + right_size > MAX_VALUE:
                    raise SecurityError(Msg("sum would be larger than the limit of %(limit)s characters/items",
                                            limit=MAX_VALUE))
                _charge(left_work + right_work)
            return operator.add(left, right)
        if operator_name == "%":
            if isinstance(left, str):
                _check_widths(left)
                values = right if isinstance(right, tuple) else (right,)
                if "*" in left and any(isinstance(v, int) and v > MAX_OUTPUT for v in values):
                    raise SecurityError(Msg("format width larger than the limit of %(limit)s",
                                            limit=MAX_OUTPUT))
                _bounded(right, FORMAT_ARGUMENT)
                _charge(len(left) // CHARS_PER_STEP)
                return _bounded(operator.mod(left, right))
            return operator.mod(left, right)
        return super().call_binop(context, operator_name, left, right)


_ENV = FlowSandbox(undefined=MissingValue, autoescape=False, cache_size=2000)
_ENV.globals = {"range": _safe_range}
_ENV.filters.update({"center": _safe_center, "indent": _safe_indent, "format": _safe_format,
                     "join": pass_context(_safe_join), "replace": pass_eval_context(_safe_replace),
                     "batch": _safe_batch, "tojson": pass_eval_context(_safe_tojson),
                     "wordwrap": pass_environment(_safe_wordwrap), "sum": pass_environment(_safe_sum)})
#: ``random`` would differ between a workflow and its replay
_ENV.filters.pop("random", None)
_ENV.filters = {**{name: _metered(name, fn) for name, fn in _ENV.filters.items()}, **_INTERNAL}
_ENV.tests = {name: _metered(name, cast(Callable[..., Any], fn), test=True) for name, fn in _ENV.tests.items()}


def _check_source(source: str) -> None:
    if len(source) > MAX_SOURCE:
        raise ExpressionError(Msg("is %(count)s characters long; the limit is %(limit)s",
                                  count=len(source), limit=MAX_SOURCE))


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
            raise ExpressionError(Msg("nests brackets or operators more than %(limit)s deep; simplify "
                                      "it",
                                      limit=MAX_NESTING))


def _check_tree(tree: nodes.Node) -> None:
    """Refuse ``__dunder__`` attributes and trees too deep to compile, walking without recursion."""
    stack: list[tuple[nodes.Node, int, int]] = [(tree, 1, 0)]
    while stack:
        node, depth, loops = stack.pop()
        if isinstance(node, nodes.Getattr) and node.attr.startswith("__"):
            raise ExpressionError(Msg("the attribute '%(attr)s' is not allowed: names starting with '__' are Python "
                                      "internals; for a field of that name write ['%(attr)s']", attr=node.attr))
        loops += isinstance(node, nodes.For | nodes.Macro | nodes.CallBlock | nodes.FilterBlock)
        if depth > MAX_DEPTH or loops > MAX_LOOP_NESTING:
            raise ExpressionError(Msg("is nested too deeply (more than %(depth)s levels or "
                                      "%(loops)s nested loops/macros); simplify it",
                                      depth=MAX_DEPTH, loops=MAX_LOOP_NESTING))
        stack.extend((child, depth + 1, loops) for child in node.iter_child_nodes())


def _unknown(names: set[str]) -> None:
    unknown = sorted(names - CONTEXT_NAMES - set(_ENV.globals))
    if unknown:
        allowed = ", ".join(sorted(CONTEXT_NAMES))
        raise ExpressionError(Msg("unknown name %(names)s; use one of %(allowed)s",
                                  names=', '.join(repr(n) for n in unknown), allowed=allowed))


def _loaded_names(node: nodes.Node) -> set[str]:
    found = [node, *node.find_all(nodes.Name)] if isinstance(node, nodes.Name) else node.find_all(nodes.Name)
    return {n.name for n in found if isinstance(n, nodes.Name) and n.ctx == "load"}


@lru_cache(maxsize=8192)
def check(source: str, kind: str = "expression") -> None:
    """Parse an expression (or template) and check the names it uses, without compiling it to code:
    what validation needs, at a fraction of the cost. Raises :class:`ExpressionError`."""
    _checked_tree(source, kind)


@lru_cache(maxsize=2048)
def _checked_tree(source: str, kind: str) -> nodes.Node:
    _check_source(source)
    try:
        _check_nesting(source, kind)
        if kind == "template":
            ast = _ENV.parse(source)
            _check_tree(ast)
            # statements ({% for %}, {% set %}) bind names of their own: let Jinja work out what is free
            _unknown(set(meta.find_undeclared_variables(ast)) if "{%" in source else _loaded_names(ast))
            return ast
        if not source.strip():
            raise ExpressionError(Msg("is empty; write an expression such as 'customer.orders_count > 0'"))
        parser = Parser(_ENV, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise ExpressionError(Msg("syntax error: unexpected '%(token)s' after the expression",
                                      token=str(parser.stream.current.value)))
        _check_tree(expr)
        _unknown(_loaded_names(expr))
        return expr
    except TemplateSyntaxError as exc:
        where = f" on line {exc.lineno}" if kind == "template" else ""
        raise ExpressionError(Msg("syntax error%(where)s: %(message)s",
                                  where=where, message=exc.message)) from None


#: syntax that can repeat work or grow values: an expression or template with any of it is run on sample data
_COSTLY_SHAPES = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.Assign, nodes.AssignBlock,
                  nodes.With, nodes.Call, nodes.Mul, nodes.Pow, nodes.Mod, nodes.Slice)
#: filters whose work is linear in their (small) input and that cannot repeat or grow anything
_LINEAR_FILTERS = frozenset({"default", "d", "length", "count", "upper", "lower", "string", "int", "float",
                             "round", "abs", "trim", "e", "escape", "first", "last", "capitalize", "tojson",
                             "urlencode", "truncate"})


def cheap_by_shape(source: str, kind: str) -> bool:
    """True when the syntax alone bounds the cost far below the validation limit: no loops, macros,
    assignments, calls, repetition or slicing, and only filters whose work is linear in their input.
    Such an expression does at most a few operations per syntax node over values no bigger than the
    source text and the data it reads, so validation need not compile and run it on sample data."""
    tree = _checked_tree(source, kind)
    for node in (tree, *tree.find_all(nodes.Node)):
        if isinstance(node, _COSTLY_SHAPES):
            return False
        if isinstance(node, nodes.Filter) and node.name not in _LINEAR_FILTERS:
            return False
        if isinstance(node, nodes.Test) and node.name not in _FLAT_TESTS:
            return False
    return True


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Any:
    """Compile an expression; raise :class:`ExpressionError` naming the problem."""
    check(source, "expression")
    token = _BUDGET.set(None)  # no budget while compiling: constant folding must leave the metering to run time
    try:
        return _ENV.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise ExpressionError(Msg("syntax error: %(message)s", message=exc.message)) from None
    except (SyntaxError, RecursionError, MemoryError) as exc:  # generated code Python cannot compile
        raise ExpressionError(Msg("is too complex to compile (%(error_type)s); simplify it",
                                  error_type=type(exc).__name__)) from None
    finally:
        _BUDGET.reset(token)


@lru_cache(maxsize=4096)
def compile_template(source: str) -> Any:
    """Compile a message template; raise :class:`ExpressionError` naming the problem."""
    check(source, "template")
    token = _BUDGET.set(None)  # as in compile_expression
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise ExpressionError(Msg("syntax error on line %(lineno)s: %(message)s",
                                  lineno=exc.lineno, message=exc.message)) from None
    except (SyntaxError, RecursionError, MemoryError) as exc:  # generated code Python cannot compile
        raise ExpressionError(Msg("is too complex to compile (%(error_type)s); simplify it",
                                  error_type=type(exc).__name__)) from None
    finally:
        _BUDGET.reset(token)


def _failure(what: Msg, exc: BaseException) -> ExpressionError:
    """Every failure of an evaluation as an :class:`ExpressionError` (:class:`ExpressionTooCostly` for a limit)."""
    if isinstance(exc, ExpressionError):
        return exc
    if isinstance(exc, SecurityError | RecursionError | MemoryError):
        return ExpressionTooCostly(Msg("%(what)s: %(reason)s", what=what, reason=_reason(exc)))
    return ExpressionError(Msg("%(what)s: %(reason)s", what=what, reason=_reason(exc)))


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    """Evaluate an expression against a context (customer, event, vars, journey).

    Any failure, a limit included, is an :class:`ExpressionError`; nothing else escapes. The work is
    bounded by the active budget (:func:`shared_budget`), or by a budget of its own."""
    compiled = compile_expression(source)
    # the active budget (a shared one), or a fresh one for this evaluation
    token = _BUDGET.set(_BUDGET.get() or Budget())
    try:
        return compiled(**context)
    except Exception as exc:  # a sandboxed expression may fail in any way; callers get one error type
        raise _failure(Msg("cannot evaluate '%(source)s'", source=source), exc) from None
    finally:
        _BUDGET.reset(token)


def _reason(exc: BaseException) -> Msg:
    if isinstance(exc, RecursionError):
        return Msg("it recurses too deeply")
    if isinstance(exc, MemoryError):
        return Msg("it needs too much memory")
    return message_of(exc)  # ours (the sandbox's refusals are Msg), else Jinja's or Python's words as they are


def test(source: str, context: Mapping[str, Any]) -> bool:
    """Evaluate an expression as a condition (missing values are false)."""
    return bool(evaluate(source, context))


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render a template; the output is capped at MAX_OUTPUT characters. Any failure is an
    :class:`ExpressionError`."""
    template = compile_template(source)
    token = _BUDGET.set(_BUDGET.get() or Budget())
    try:
        out = str(template.render(**context))
    except Exception as exc:  # a sandboxed template may fail in any way; callers get one error type
        raise _failure(Msg("cannot render template"), exc) from None
    finally:
        _BUDGET.reset(token)
    if len(out) > MAX_OUTPUT:
        raise ExpressionTooCostly(Msg("rendered text is %(count)s characters; the limit is %(limit)s",
                                      count=len(out), limit=MAX_OUTPUT))
    return out


def cost(source: str, kind: str, context: Mapping[str, Any]) -> int:
    """The operations evaluating ``source`` (an ``expression`` or a ``template``) on ``context`` takes.

    Raises :class:`ExpressionTooCostly` when it goes past a limit; any other failure (a missing value
    the sample data does not have, a type error) is not a cost and gives the operations used until then."""
    active = _BUDGET.get()
    with shared_budget(active) as budget:
        before = budget.steps
        try:
            if kind == "template":
                render(source, context)
            else:
                evaluate(source, context)
        except ExpressionTooCostly:
            raise
        except ExpressionError:
            pass
        return budget.steps - before


#: the share of the budget an expression or template may use on :func:`sample_context` to pass validation:
#: real customers and events are bigger than the sample, so the rest is headroom
VALIDATION_STEPS = MAX_STEPS // 10
#: what all the expressions and templates of one flow may cost together on the sample, at validation
VALIDATION_FLOW_STEPS = 2 * MAX_STEPS


def sample_context() -> dict[str, Any]:
    """Sample data validation evaluates expressions and templates on: a customer, an order event with
    a few items, journey variables, like those of the demo data — and the variables the WeCom sidebar's
    scripts and suggestion rules read (``vars.staff``, ``vars.latest_message``, ``vars.open_ticket_types``,
    ``vars.tier``, ``vars.facts``: activities/sidebar), which are checked on the same sample when saved."""
    from datetime import UTC, datetime

    items = [{"sku": f"SKU-{i}", "name": f"商品 {i}", "price_fen": 1990 * i, "quantity": i} for i in range(1, 4)]
    return {
        "customer": {"id": "sample-customer", "name": "李雷", "timezone": "Asia/Shanghai", "orders_count": 2,
                     "vip_level": 1, "city": "杭州", "tags": ["尝鲜客"], "phone": "13800138000",
                     "total_spent_fen": 25900, "birthday": "1990-05-01"},
        "event": {"id": "sample-event", "type": "order.paid", "source": "sample",
                  "occurred_at": "2026-01-01T10:00:00+08:00",
                  "payload": {"order_id": "O-1", "amount": 12900, "amount_fen": 12900, "items": items,
                              "lines": items, "text": "您好，我想问一下订单什么时候发货", "product_type": "服饰"}},
        "vars": {"coupon": "WELCOME10", "score": 3,
                 "staff": "客服小王", "latest_message": "您好，请问这款理财产品的年化收益率是多少？什么时候发货？",
                 "open_ticket_types": ["refund"], "tier": "gold", "facts": {"loyalty": {"tier": "gold",
                                                                                       "points": 1200}}},
        "journey": {"id": "journey/sample/sample-customer", "flow": "sample", "version": 1,
                    "started_at": "2026-01-01T10:00:00+08:00"},
        "now": datetime(2026, 1, 1, 2, 0, tzinfo=UTC),
    }


#: sample costs already measured, by (source, kind): steps, or the message of the limit it went past.
#: The web app has them measured in its evaluation pool (engine/isolation.py) and remembers the answers,
#: so its own validation never evaluates anything.
_SAMPLE_COSTS: OrderedDict[tuple[str, str], int | str] = OrderedDict()
_SAMPLE_COSTS_MAX = 8192
_RECORDING: ContextVar[list[tuple[str, str, int | str]] | None] = ContextVar("tideflow_sample_costs", default=None)


def remember_sample_costs(costs: Iterable[tuple[str, str, int | str]]) -> None:
    for source, kind, cost_or_error in costs:
        _SAMPLE_COSTS[(source, kind)] = cost_or_error
        _SAMPLE_COSTS.move_to_end((source, kind))
    while len(_SAMPLE_COSTS) > _SAMPLE_COSTS_MAX:
        _SAMPLE_COSTS.popitem(last=False)


@contextmanager
def recording_sample_costs() -> Iterator[list[tuple[str, str, int | str]]]:
    """Collect every sample cost measured inside the block (what the evaluation pool sends back)."""
    found: list[tuple[str, str, int | str]] = []
    token = _RECORDING.set(found)
    try:
        yield found
    finally:
        _RECORDING.reset(token)


def _measured_sample_cost(source: str, kind: str) -> int:
    known = _SAMPLE_COSTS.get((source, kind))
    if known is None:
        try:
            known = 0 if cheap_by_shape(source, kind) else cost_within(source, kind, sample_context(),
                                                                          Budget(VALIDATION_STEPS))
        except ExpressionTooCostly as exc:
            known = exc.message  # a Msg (a str that pickles with its template): translated where it is shown
        remember_sample_costs([(source, kind, known)])
    recording = _RECORDING.get()
    if recording is not None:
        recording.append((source, kind, known))
    if isinstance(known, str):
        raise ExpressionTooCostly(known if isinstance(known, Msg) else verbatim(known))
    return known


def measure_sample_costs(sources: Iterable[tuple[str, str]]) -> list[tuple[str, str, int | str]]:
    """The sample costs of ``(source, kind)`` pairs (steps, or the message of the limit each went past): what
    the web app has its evaluation pool compute for texts that are not flows (the sidebar's scripts and rules),
    then remembers (:func:`remember_sample_costs`) so checking them in the web process evaluates nothing."""
    with recording_sample_costs() as found:
        for source, kind in sources:
            with suppress(ExpressionError):  # recorded; a syntax error is the caller's check to report
                _measured_sample_cost(source, kind)
    return found


def sample_cost(source: str, kind: str, budget: Budget | None = None) -> int:
    """The operations ``source`` takes on :func:`sample_context`, bounded by :data:`VALIDATION_STEPS`
    (and by ``budget``, a flow's running total, when given). :class:`ExpressionTooCostly` names the
    limit it went past. Measured once per text (the sample is fixed), then remembered."""
    used = _measured_sample_cost(source, kind)
    if budget is not None:
        budget.steps += used
        if budget.steps > budget.limit:
            raise ExpressionTooCostly(Msg("together with the flow's other expressions, costs more than %(limit)s "
                                          "operations on sample data; simplify them",
                                          limit=budget.limit))
    return used


def cost_within(source: str, kind: str, context: Mapping[str, Any], budget: Budget) -> int:
    """:func:`cost` against a given budget."""
    with shared_budget(budget):
        return cost(source, kind, context)
