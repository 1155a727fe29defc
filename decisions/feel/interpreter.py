"""FEEL evaluation: the syntax tree compiled once into Python closures, then run many times.

``compile_expression(tree)`` returns ``f(scope) -> value``; ``compile_unary_tests(tree)`` returns
``f(input, scope) -> True | False | None``. A :class:`Scope` holds variables (a chain of dicts)
and the evaluation's :class:`~decisions.feel.limits.Budget`.

FEEL semantics kept here:

- **null propagation** — an operator or function given null, or values of the wrong types,
  gives null; the reason is noted on the budget (``Budget.notes``) for the report;
- **three-valued logic** — ``and``/``or`` over true, false and null (anything not a boolean is
  null), comparisons of values that cannot be compared give null;
- **numbers** are Decimals rounded to 34 digits (:data:`~decisions.feel.values.NUMBERS`);
- **unary tests** (DMN 1.5 §10.3.2.11): ``< 10`` compares, a range contains, a list contains, a
  boolean expression over ``?`` is the test, anything else is ``? = value``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal, DecimalException
from typing import Any

from decisions.feel import syntax as s
from decisions.feel import temporal
from decisions.feel.library import BUILTINS
from decisions.feel.limits import Budget, check_items, check_text
from decisions.feel.limits import current as current_budget
from decisions.feel.types import TypeRegistry, instance_of
from decisions.feel.values import (
    NUMBERS,
    UNBOUNDED,
    FeelError,
    FeelFunction,
    FeelRange,
    YearsMonths,
    feel_compare,
    feel_equal,
    in_range,
    make_range,
    negate,
    type_name,
)
from wording import Msg, message_of

Evaluator = Callable[["Scope"], Any]
Test = Callable[[Any, "Scope"], "bool | None"]
_MISSING = object()


class Scope:
    """Variables visible to an expression: ``vars``, then the parent's, then the built-ins."""

    __slots__ = ("parent", "vars")

    def __init__(self, variables: dict[str, Any], parent: Scope | None = None) -> None:
        self.vars = variables
        self.parent = parent

    @property
    def budget(self) -> Budget:
        return current_budget()

    def child(self, variables: dict[str, Any]) -> Scope:
        return Scope(variables, self)

    def lookup(self, name: str) -> Any:
        scope: Scope | None = self
        while scope is not None:
            value = scope.vars.get(name, _MISSING)
            if value is not _MISSING:
                return value
            scope = scope.parent
        function = BUILTINS.get(name)
        if function is not None:
            return function
        self.budget.note(Msg("no variable named '%(name)s'", name=name))
        return None

    def defines(self, name: str) -> bool:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return True
            scope = scope.parent
        return False


def null(scope: Scope, message: str) -> Any:
    """Null, with the reason noted on the evaluation's budget (for the report)."""
    scope.budget.note(message)
    return None


# --------------------------------------------------------------------------------------------- operators


def _number_op(operator: str, left: Decimal, right: Decimal) -> Decimal:
    if operator == "+":
        return NUMBERS.add(left, right)
    if operator == "-":
        return NUMBERS.subtract(left, right)
    if operator == "*":
        return NUMBERS.multiply(left, right)
    if operator == "/":
        return NUMBERS.divide(left, right)
    return power(left, right)


def power(base: Decimal, exponent: Decimal) -> Decimal:
    if exponent == exponent.to_integral_value() and abs(exponent) <= 999_999_999:
        return NUMBERS.power(base, int(exponent))
    return NUMBERS.power(base, exponent)


def arithmetic(operator: str, left: Any, right: Any) -> Any:
    """``left <operator> right`` for every pair of types FEEL defines; FeelError otherwise."""
    lt, rt = type(left), type(right)
    if lt is Decimal and rt is Decimal:
        return _number_op(operator, left, right)
    if left is None or right is None:
        return None
    if operator == "+":
        if lt is str and rt is str:
            return check_text(left + right)
        return _add(left, right)
    if operator == "-":
        return _subtract(left, right)
    if operator == "*":
        if isinstance(left, Decimal):
            left, right = right, left
        if isinstance(right, Decimal):
            if isinstance(left, timedelta):
                return temporal.scale_duration(left, right)
            if isinstance(left, YearsMonths):
                return YearsMonths(int(NUMBERS.multiply(Decimal(left.months), right).to_integral_value("ROUND_DOWN")))
    if operator == "/":
        if isinstance(right, Decimal):
            if isinstance(left, timedelta):
                return temporal.seconds_duration(NUMBERS.divide(temporal.duration_seconds(left), right))
            if isinstance(left, YearsMonths):
                return YearsMonths(int(NUMBERS.divide(Decimal(left.months), right).to_integral_value("ROUND_DOWN")))
        if isinstance(left, timedelta) and isinstance(right, timedelta):
            return NUMBERS.divide(temporal.duration_seconds(left), temporal.duration_seconds(right))
        if isinstance(left, YearsMonths) and isinstance(right, YearsMonths):
            return NUMBERS.divide(Decimal(left.months), Decimal(right.months))
    raise FeelError(Msg("cannot compute %(left)s %(operator)s %(right)s", left=type_name(left), operator=operator,
                        right=type_name(right)))


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, timedelta | YearsMonths) and not isinstance(right, timedelta | YearsMonths):
        left, right = right, left
    if isinstance(right, timedelta):
        if isinstance(left, timedelta):
            return left + right
        if isinstance(left, datetime):
            return temporal.add_duration(left, right)
        if isinstance(left, date):
            return temporal.add_duration(temporal.as_date_time(left), right).date()
        if isinstance(left, time):
            return temporal.add_time(left, right)
    if isinstance(right, YearsMonths):
        if isinstance(left, YearsMonths):
            return YearsMonths(left.months + right.months)
        if isinstance(left, datetime):
            moved = temporal.add_months(left.date(), right.months)
            return left.replace(year=moved.year, month=moved.month, day=moved.day)
        if isinstance(left, date):
            return temporal.add_months(left, right.months)
    raise FeelError(Msg("cannot compute %(left)s + %(right)s", left=type_name(left), right=type_name(right)))


def _subtract(left: Any, right: Any) -> Any:
    if isinstance(right, timedelta):
        if isinstance(left, timedelta):
            return left - right
        if isinstance(left, datetime | date | time):
            return _add(left, -right)
    if isinstance(right, YearsMonths):
        if isinstance(left, YearsMonths):
            return YearsMonths(left.months - right.months)
        if isinstance(left, date):
            return _add(left, YearsMonths(-right.months))
    if isinstance(left, date) and isinstance(right, date):
        if isinstance(left, datetime) or isinstance(right, datetime):
            # a date counts as its midnight UTC; local and zoned date-times do not mix
            a = left if isinstance(left, datetime) else temporal.as_date_time(left)
            b = right if isinstance(right, datetime) else temporal.as_date_time(right)
            if (a.tzinfo is None) != (b.tzinfo is None):
                raise FeelError(Msg("cannot subtract a date and time without a time zone and one with a time zone"))
            return temporal.instant(a) - temporal.instant(b)
        return timedelta(days=(left - right).days)
    if isinstance(left, time) and isinstance(right, time):
        return temporal.subtract_times(left, right)
    raise FeelError(Msg("cannot compute %(left)s - %(right)s", left=type_name(left), right=type_name(right)))


_COMPARE: dict[str, Callable[[int], bool]] = {
    "<": lambda order: order < 0, "<=": lambda order: order <= 0,
    ">": lambda order: order > 0, ">=": lambda order: order >= 0,
}


def compare(operator: str, left: Any, right: Any) -> bool | None:
    if operator == "=":
        return feel_equal(left, right)
    if operator == "!=":
        equal = feel_equal(left, right)
        return None if equal is None else not equal
    order = feel_compare(left, right)
    if order is None:
        return None
    return _COMPARE[operator](order)


# --------------------------------------------------------------------------------------------- properties


def member(value: Any, name: str, scope: Scope) -> Any:
    """``value.name``: a context entry, or a property of a date, time, duration or range."""
    if isinstance(value, dict):
        if name in value:
            return value[name]
        return null(scope, Msg("the context has no entry '%(name)s'", name=name))
    if isinstance(value, list):
        scope.budget.charge(len(value))
        return [member(item, name, scope) for item in value]
    if value is None:
        return None
    found = _PROPERTIES.get((type_name(value), name))
    if found is None:
        return null(scope, Msg("a %(type)s has no property '%(name)s'", type=type_name(value), name=name))
    return found(value)


def _weekday(value: date) -> Decimal:
    return Decimal(value.isoweekday())


def _seconds(value: datetime | time) -> Decimal:
    return Decimal(value.second)


_PROPERTIES: dict[tuple[str, str], Callable[[Any], Any]] = {}
for _kind in ("date", "date and time"):
    _PROPERTIES[(_kind, "year")] = lambda v: Decimal(v.year)
    _PROPERTIES[(_kind, "month")] = lambda v: Decimal(v.month)
    _PROPERTIES[(_kind, "day")] = lambda v: Decimal(v.day)
    _PROPERTIES[(_kind, "weekday")] = _weekday
for _kind in ("time", "date and time"):
    _PROPERTIES[(_kind, "hour")] = lambda v: Decimal(v.hour)
    _PROPERTIES[(_kind, "minute")] = lambda v: Decimal(v.minute)
    _PROPERTIES[(_kind, "second")] = _seconds
    _PROPERTIES[(_kind, "time offset")] = temporal.local_offset
    _PROPERTIES[(_kind, "timezone")] = temporal.zone_name
def _signed_part(months_or_seconds: int, unit: int, modulo: int | None) -> Decimal:
    """A component of a duration, with the duration's sign: ``-PT25H`` has hours -1 and days -1."""
    sign = -1 if months_or_seconds < 0 else 1
    whole = abs(months_or_seconds) // unit
    return Decimal(sign * (whole % modulo if modulo else whole))


def _seconds_of(value: timedelta) -> int:
    return int(temporal.duration_seconds(value))


_PROPERTIES[("years and months duration", "years")] = lambda v: _signed_part(v.months, 12, None)
_PROPERTIES[("years and months duration", "months")] = lambda v: _signed_part(v.months, 1, 12)
_PROPERTIES[("days and time duration", "days")] = lambda v: _signed_part(_seconds_of(v), 86400, None)
_PROPERTIES[("days and time duration", "hours")] = lambda v: _signed_part(_seconds_of(v), 3600, 24)
_PROPERTIES[("days and time duration", "minutes")] = lambda v: _signed_part(_seconds_of(v), 60, 60)
_PROPERTIES[("days and time duration", "seconds")] = lambda v: _signed_part(_seconds_of(v), 1, 60)
_PROPERTIES[("range", "start")] = lambda v: None if v.start is UNBOUNDED else v.start
_PROPERTIES[("range", "end")] = lambda v: None if v.end is UNBOUNDED else v.end
_PROPERTIES[("range", "start included")] = lambda v: v.start_included
_PROPERTIES[("range", "end included")] = lambda v: v.end_included


# --------------------------------------------------------------------------------------------- types


def conforms(value: Any, declared: s.TypeRef, scope: Scope | None = None) -> bool:
    """``value instance of declared``, named types resolved against the model's item definitions
    (the variable ``@types`` that a decision graph puts in scope)."""
    return instance_of(value, declared, type_registry(scope))


def type_registry(scope: Scope | None) -> TypeRegistry | None:
    if scope is None or not scope.defines("@types"):
        return None
    found = scope.lookup("@types")
    return found if isinstance(found, Mapping) else None


# --------------------------------------------------------------------------------------------- compiler


height = s.tree_height
_children = s.children


def compile_expression(node: s.Node) -> Evaluator:
    """``f(scope) -> value`` for a tree. FeelErrors inside become null (noted); limits propagate."""
    compiler = _COMPILERS.get(type(node))
    if compiler is None:
        raise s.FeelSyntaxError(Msg("cannot evaluate a %(name)s", name=type(node).__name__))
    return compiler(node)


def _guarded(evaluate: Evaluator) -> Evaluator:
    """Errors of FEEL's kind (and Decimal's) become null with a note; limit errors propagate."""

    def guarded(scope: Scope) -> Any:
        try:
            return evaluate(scope)
        except FeelError as error:
            return null(scope, message_of(error))
        except DecimalException:
            return null(scope, Msg("a number is out of FEEL's range (or divided by zero)"))
        except (OverflowError, ValueError) as error:
            return null(scope, Msg("out of range: %(error)s", error=error))

    return guarded


def _literal(node: s.Literal) -> Evaluator:
    value = node.value
    return lambda scope: value


def _name(node: s.Name) -> Evaluator:
    name = node.name
    if "." not in name:
        return lambda scope: scope.lookup(name)
    head, *rest = name.split(".")

    def dotted(scope: Scope) -> Any:
        # a known name with a dot (a BKM parameter 'Person.Gender'), else the path Person → Gender
        if scope.defines(name):
            return scope.lookup(name)
        value = scope.lookup(head.strip())
        for part in rest:
            value = member(value, part.strip(), scope)
        return value

    return dotted


def _input(node: s.InputValue) -> Evaluator:
    return lambda scope: scope.lookup("?")


def _temporal(node: s.TemporalLiteral) -> Evaluator:
    try:
        value = temporal.parse_temporal(node.text)
    except FeelError as error:
        message = message_of(error)
        return lambda scope: null(scope, message)
    return lambda scope: value


def _path(node: s.Path) -> Evaluator:
    target = compile_expression(node.target)
    name = node.name
    return lambda scope: member(target(scope), name, scope)


def _filter(node: s.Filter) -> Evaluator:
    target = compile_expression(node.target)
    condition = compile_expression(node.condition)
    constant_index = isinstance(node.condition, s.Literal) and isinstance(node.condition.value, Decimal)

    def item_scope(scope: Scope, item: Any) -> Scope:
        variables = dict(item) if isinstance(item, dict) else {}
        variables.setdefault("item", item)  # an entry named item wins over the item itself
        return scope.child(variables)

    def evaluate(scope: Scope) -> Any:
        value = target(scope)
        items = value if isinstance(value, list) else ([] if value is None else [value])
        if constant_index:
            return _index(items, node.condition.value, scope)  # type: ignore[attr-defined]
        if not items:
            return []
        first = condition(item_scope(scope, items[0]))
        if isinstance(first, Decimal):
            return _index(items, first, scope)
        scope.budget.charge(len(items))
        kept = [items[0]] if first is True else []
        for item in items[1:]:
            if condition(item_scope(scope, item)) is True:
                kept.append(item)
        return kept

    return evaluate


def _index(items: Sequence[Any], index: Decimal, scope: Scope) -> Any:
    if index != index.to_integral_value():
        return null(scope, Msg("list index %(index)s is not a whole number", index=index))
    position = int(index)
    if position > 0 and position <= len(items):
        return items[position - 1]
    if position < 0 and -position <= len(items):
        return items[position]
    return null(scope, Msg("list index %(position)s is out of range (the list has %(count)s items)", position=position,
                           count=len(items)))


def _call(node: s.Call) -> Evaluator:
    target = compile_expression(node.target)
    args = [compile_expression(arg) for arg in node.args]
    named = [(name, compile_expression(arg)) for name, arg in node.named] if node.named else None
    label = node.target.name if isinstance(node.target, s.Name) else "the function"

    def evaluate(scope: Scope) -> Any:
        function = target(scope)
        if not isinstance(function, FeelFunction):
            return null(scope, Msg("%(label)s is not a function", label=label))
        scope.budget.charge()
        if named is not None:
            return function.invoke(None, {name: arg(scope) for name, arg in named})
        return function.invoke([arg(scope) for arg in args], None)

    return evaluate


def _negation(node: s.Negation) -> Evaluator:
    operand = compile_expression(node.operand)
    return _guarded(lambda scope: negate(operand(scope)))


def _arithmetic(node: s.Arithmetic) -> Evaluator:
    left = compile_expression(node.left)
    right = compile_expression(node.right)
    operator = node.operator

    def evaluate(scope: Scope) -> Any:
        a = left(scope)
        b = right(scope)
        if type(a) is Decimal and type(b) is Decimal:
            try:
                return _number_op(operator, a, b)
            except DecimalException:
                return null(scope, Msg("%(operator)s: a number is out of FEEL's range (or divided by zero)",
                                       operator=operator))
        if a is None or b is None:
            return None
        try:
            return arithmetic(operator, a, b)
        except FeelError as error:
            return null(scope, message_of(error))
        except DecimalException:
            return null(scope, Msg("%(operator)s: a number is out of FEEL's range (or divided by zero)",
                                   operator=operator))
        except (OverflowError, ValueError) as error:
            return null(scope, Msg("%(operator)s: out of range (%(error)s)", operator=operator, error=error))

    return evaluate


def _comparison(node: s.Comparison) -> Evaluator:
    left = compile_expression(node.left)
    right = compile_expression(node.right)
    operator = node.operator

    def evaluate(scope: Scope) -> Any:
        a, b = left(scope), right(scope)
        outcome = compare(operator, a, b)
        if outcome is None and not (operator in ("=", "!=") and (a is None or b is None)):
            scope.budget.note(Msg("cannot compare a %(type)s with a %(other)s (%(operator)s)", type=type_name(a),
                                  other=type_name(b), operator=operator))
        return outcome

    return evaluate


def _logical(node: s.Logical) -> Evaluator:
    left = compile_expression(node.left)
    right = compile_expression(node.right)
    if node.operator == "and":
        def conjunction(scope: Scope) -> bool | None:
            a = left(scope)
            if a is False:
                return False
            b = right(scope)
            if b is False:
                return False
            return True if a is True and b is True else None
        return conjunction

    def disjunction(scope: Scope) -> bool | None:
        a = left(scope)
        if a is True:
            return True
        b = right(scope)
        if b is True:
            return True
        return False if a is False and b is False else None

    return disjunction


def _between(node: s.Between) -> Evaluator:
    value = compile_expression(node.value)
    low = compile_expression(node.low)
    high = compile_expression(node.high)

    def evaluate(scope: Scope) -> bool | None:
        x = value(scope)
        above = compare(">=", x, low(scope))
        below = compare("<=", x, high(scope))
        if above is False or below is False:
            return False
        return True if above and below else None

    return evaluate


def _instance_of(node: s.InstanceOf) -> Evaluator:
    value = compile_expression(node.value)
    declared = node.type
    return lambda scope: conforms(value(scope), declared, scope)


def _if(node: s.If) -> Evaluator:
    condition = compile_expression(node.condition)
    then = compile_expression(node.then)
    otherwise = compile_expression(node.otherwise)
    return lambda scope: then(scope) if condition(scope) is True else otherwise(scope)


def _iteration_sources(iteration: s.Iteration) -> Callable[[Scope], Sequence[Any] | None]:
    source = compile_expression(iteration.source)
    until = compile_expression(iteration.until) if iteration.until is not None else None

    def items(scope: Scope) -> Sequence[Any] | None:
        start = source(scope)
        if until is None:
            if isinstance(start, list):
                return start
            if isinstance(start, FeelRange):
                return _range_items(start, scope)
            return None if start is None else [start]
        end = until(scope)
        return _span(start, end, True, True, scope)

    return items


def _span(start: Any, end: Any, start_included: bool, end_included: bool, scope: Scope) -> Sequence[Any] | None:
    if isinstance(start, Decimal) and isinstance(end, Decimal):
        if start != start.to_integral_value() or end != end.to_integral_value():
            return null(scope, Msg("a range to iterate over needs whole numbers"))
        a, b = int(start), int(end)
        step = 1 if b >= a else -1
        if not start_included:
            a += step
        if not end_included:
            b -= step
        if (b - a) * step < 0:
            return []
        check_items(abs(b - a) + 1)
        return _DecimalRange(range(a, b + step, step))
    if type(start) is date and type(end) is date:
        days = (end - start).days
        check_items(abs(days) + 1)
        step = 1 if days >= 0 else -1
        return [start + timedelta(days=offset) for offset in range(0, days + step, step)
                if (start_included or offset) and (end_included or offset != days)]
    return null(scope, Msg("cannot iterate from a %(low)s to a %(high)s", low=type_name(start),
                           high=type_name(end)))


def _range_items(value: FeelRange, scope: Scope) -> Sequence[Any] | None:
    if value.start in (None, UNBOUNDED) or value.end in (None, UNBOUNDED) or value.operator:
        return null(scope, Msg("cannot iterate over a range without a start and an end"))
    return _span(value.start, value.end, value.start_included, value.end_included, scope)


class _DecimalRange(Sequence[Decimal]):
    """``1..1000`` iterated lazily (counted per item as it goes)."""

    __slots__ = ("numbers",)

    def __init__(self, numbers: range) -> None:
        self.numbers = numbers

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, index: Any) -> Any:
        return Decimal(self.numbers[index])

    def __iter__(self) -> Any:
        return (Decimal(number) for number in self.numbers)


def _for(node: s.For) -> Evaluator:
    sources = [(iteration.name, _iteration_sources(iteration)) for iteration in node.iterations]
    body = compile_expression(node.body)

    def evaluate(scope: Scope) -> Any:
        results: list[Any] = []
        budget = scope.budget

        def nest(level: int, current: Scope) -> bool:
            if level == len(sources):
                budget.charge()
                current.vars["partial"] = results
                results.append(body(current))
                check_items(len(results))
                return True
            name, items = sources[level]
            values = items(current)
            if values is None:
                return False
            for value in values:
                budget.charge()
                if not nest(level + 1, current.child({name: value})):
                    return False
            return True

        if not nest(0, scope):
            return None
        return results

    return evaluate


def _quantified(node: s.Quantified) -> Evaluator:
    sources = [(iteration.name, _iteration_sources(iteration)) for iteration in node.iterations]
    condition = compile_expression(node.condition)
    some = node.kind == "some"

    def evaluate(scope: Scope) -> bool | None:
        budget = scope.budget
        unknown = False

        def nest(level: int, current: Scope) -> bool | None:
            nonlocal unknown
            if level == len(sources):
                budget.charge()
                outcome = condition(current)
                if outcome is some:
                    return True  # decided
                if outcome is not (not some):
                    unknown = True
                return False
            name, items = sources[level]
            values = items(current)
            if values is None:
                unknown = True
                return False
            return any(nest(level + 1, current.child({name: value})) for value in values)

        if nest(0, scope):
            return some
        if unknown:
            return None
        return not some

    return evaluate


def _list(node: s.ListExpr) -> Evaluator:
    items = [compile_expression(item) for item in node.items]
    if all(isinstance(item, s.Literal) for item in node.items):
        constant = [item.value for item in node.items]  # type: ignore[attr-defined]
        return lambda scope: list(constant)

    def evaluate(scope: Scope) -> list[Any]:
        scope.budget.charge(len(items))
        return [item(scope) for item in items]

    return evaluate


def _context(node: s.ContextExpr) -> Evaluator:
    entries = [(key, compile_expression(value)) for key, value in node.entries]

    def evaluate(scope: Scope) -> dict[str, Any]:
        scope.budget.charge(len(entries))
        result: dict[str, Any] = {}
        inner = scope.child(result)
        for key, value in entries:
            result[key] = value(inner)
        return dict(result)

    return evaluate


def _range(node: s.RangeExpr) -> Evaluator:
    start = compile_expression(node.start) if node.start is not None else None
    end = compile_expression(node.end) if node.end is not None else None

    def evaluate(scope: Scope) -> Any:
        low = start(scope) if start is not None else None
        high = end(scope) if end is not None else None
        try:
            return make_range(low, high, node.start_included, node.end_included)
        except FeelError as error:
            return null(scope, message_of(error))

    return evaluate


def _unary_test_value(node: s.UnaryTest) -> Evaluator:
    """``< 10`` used as a value: the range it describes."""
    operand = compile_expression(node.operand)
    operator = node.operator

    def evaluate(scope: Scope) -> Any:
        value = operand(scope)
        if value is None:
            return None
        if operator in ("<", "<="):
            return FeelRange(UNBOUNDED, value, False, operator == "<=")
        if operator in (">", ">="):
            return FeelRange(value, UNBOUNDED, operator == ">=", False)
        return FeelRange(value, value, True, True, operator or "=")

    return evaluate


def _function(node: s.FunctionDef) -> Evaluator:
    names = [name for name, _ in node.params]
    declared = [str(kind) if kind is not None else None for _, kind in node.params]
    if node.external:
        def external(scope: Scope) -> Any:
            def refuse(args: list[Any] | None, named: dict[str, Any] | None) -> Any:
                raise FeelError(Msg("external (Java/PMML) functions are not supported"))
            return FeelFunction("external function", names, refuse, declared)
        return external
    body = compile_expression(node.body)
    frames = height(node.body) * 2 + 4
    param_types = [kind for _, kind in node.params]

    def evaluate(scope: Scope) -> FeelFunction:
        return user_function("anonymous function", names, param_types, body, frames, scope)

    return evaluate


def user_function(label: str, names: list[str], param_types: Sequence[s.TypeRef | None], body: Evaluator,
                  frames: int, closure: Scope) -> FeelFunction:
    """A function whose body is FEEL (``function(a) …``, a BKM): binds its arguments over ``closure``."""

    def call(args: list[Any] | None, named: dict[str, Any] | None) -> Any:
        if named is not None:
            unknown = set(named) - set(names)
            if unknown:
                raise FeelError(Msg("no parameter named %(names)s", names=", ".join(sorted(unknown))))
            values = [named.get(name) for name in names]
        else:
            assert args is not None
            if len(args) != len(names):
                raise FeelError(Msg("expects %(count)s arguments, got %(given)s", count=len(names), given=len(args)))
            values = list(args)
        budget = current_budget()
        for index, (value, declared) in enumerate(zip(values, param_types, strict=True)):
            if declared is not None and value is not None:
                coerced = _coerce_argument(value, declared, closure)
                if coerced is _MISSING:
                    raise FeelError(Msg("argument '%(name)s' is not a %(declared)s", name=names[index],
                                        declared=declared))
                values[index] = coerced
        budget.enter(frames)
        try:
            return body(closure.child(dict(zip(names, values, strict=True))))
        finally:
            budget.leave(frames)

    return FeelFunction(label, names, call, [str(t) if t is not None else None for t in param_types])


def _coerce_argument(value: Any, declared: s.TypeRef, scope: Scope) -> Any:
    if conforms(value, declared, scope):
        return value
    if isinstance(value, list) and len(value) == 1 and conforms(value[0], declared, scope):
        return value[0]
    if declared.name == "list" and conforms([value], declared, scope):
        return [value]
    return _MISSING


_COMPILERS: dict[type, Callable[[Any], Evaluator]] = {
    s.Literal: _literal, s.Name: _name, s.InputValue: _input, s.TemporalLiteral: _temporal,
    s.Path: _path, s.Filter: _filter, s.Call: _call, s.Negation: _negation, s.Arithmetic: _arithmetic,
    s.Comparison: _comparison, s.Logical: _logical, s.Between: _between, s.InstanceOf: _instance_of,
    s.If: _if, s.For: _for, s.Quantified: _quantified, s.ListExpr: _list, s.ContextExpr: _context,
    s.RangeExpr: _range, s.UnaryTest: _unary_test_value, s.FunctionDef: _function,
}


# --------------------------------------------------------------------------------------------- unary tests


def _comparison_test(operator: str, operand: s.Node) -> Test:
    """``< 10`` and friends; specialised for a constant endpoint (the common, hot case)."""
    if isinstance(operand, s.Literal) and operand.value is not None:
        constant = operand.value
        kind = type(constant)
        if kind in (Decimal, str) and operator != "!=":
            check = _COMPARE.get(operator)

            def constant_test(value: Any, scope: Scope) -> bool | None:
                if type(value) is kind:
                    if check is None:  # =
                        return value == constant
                    return check((value > constant) - (value < constant))
                if value is None:
                    return None if check is not None else False
                return compare(operator, value, constant)

            return constant_test
    endpoint = compile_expression(operand)

    def test(value: Any, scope: Scope) -> bool | None:
        return compare(operator, value, endpoint(scope))

    return test


def _expression_test(node: s.Node) -> Test:
    uses_input = any(isinstance(part, s.InputValue) for part in _walk(node))
    evaluate = compile_expression(node)
    if isinstance(node, s.Literal):
        constant = node.value
        kind = type(constant)
        if constant is None:
            return lambda value, scope: value is None
        if kind in (Decimal, str):
            def literal_test(value: Any, scope: Scope) -> bool | None:
                if type(value) is kind:
                    return value == constant
                return False if value is None else feel_equal(value, constant)
            return literal_test
    if isinstance(node, s.RangeExpr) and isinstance(node.start, s.Literal) and isinstance(node.end, s.Literal) \
            and type(node.start.value) is Decimal and type(node.end.value) is Decimal:
        low, high = node.start.value, node.end.value
        low_in, high_in = node.start_included, node.end_included

        def range_test(value: Any, scope: Scope) -> bool | None:
            if type(value) is Decimal:
                above = low <= value if low_in else low < value
                return above and (value <= high if high_in else value < high)
            return None
        return range_test

    def test(value: Any, scope: Scope) -> bool | None:
        if uses_input:
            inner = scope.child({"?": value})
            result = evaluate(inner)
            if isinstance(result, bool):
                return result
        else:
            inner = scope.child({"?": value})
            result = evaluate(inner)
        return satisfies(value, result, scope)

    return test


def satisfies(value: Any, result: Any, scope: Scope) -> bool | None:
    """Whether ``value`` passes a unary test whose expression gave ``result``."""
    if isinstance(result, FeelRange):
        return in_range(value, result)
    if isinstance(result, list):
        if isinstance(value, list):
            equal = feel_equal(value, result)
            if equal:
                return True
        for item in result:
            if isinstance(item, FeelRange):
                if in_range(value, item) is True:
                    return True
            elif feel_equal(item, value) is True:
                return True
        return False
    if isinstance(result, bool) and not isinstance(value, bool):
        return result
    if isinstance(result, FeelFunction):
        outcome = result.invoke([value], None)
        return outcome if isinstance(outcome, bool) else None
    if result is None:
        return value is None
    return feel_equal(value, result)


def _walk(node: s.Node) -> list[Any]:
    found: list[Any] = []
    stack: list[Any] = [node]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(_children(current))
    return found


def compile_positive_test(test: s.UnaryTest) -> Test:
    if test.operator is not None:
        return _comparison_test(test.operator, test.operand)
    return _expression_test(test.operand)


def compile_unary_tests(node: s.UnaryTests) -> Test:
    """``f(input, scope) -> True | False | None`` for an input entry."""
    if node.is_any:
        return lambda value, scope: True
    tests = [compile_positive_test(test) for test in node.tests]
    negated = node.negated
    if len(tests) == 1 and not negated:
        return tests[0]

    def evaluate(value: Any, scope: Scope) -> bool | None:
        unknown = False
        for test in tests:
            outcome = test(value, scope)
            if outcome is True:
                return not negated
            if outcome is None:
                unknown = True
        if unknown:
            return None
        return negated

    return evaluate


def _in(node: s.In) -> Evaluator:
    value = compile_expression(node.value)
    tests = compile_unary_tests(s.UnaryTests(node.tests))
    return lambda scope: tests(value(scope), scope)


_COMPILERS[s.In] = _in
