"""FEEL's built-in functions (DMN 1.5 §10.3.4): conversion, boolean, string, list, numeric,
date and time, range, context and sort functions.

Every function accepts positional arguments or named ones (the parameter names of the
specification, e.g. ``substring(string: "abc", start position: 2)``); overloads are chosen by the
number of arguments or by the names given. A wrong argument (type, count, name) is a
:class:`~decisions.feel.values.FeelError`, which the evaluator turns into null with a note.

Cost: functions that walk or build lists charge a step per item, text builders are size-checked
(:mod:`decisions.feel.limits`), ``sort`` charges n·log n comparisons, and regular expressions
(``matches``, ``replace``, ``split``) run on RE2, whose matching time is linear in the input, so
no pattern can backtrack catastrophically (back-references, which RE2 lacks, are refused).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
    DecimalException,
)
from functools import cmp_to_key, lru_cache
from typing import Any

import re2

from decisions.feel import limits, syntax, temporal
from decisions.feel.limits import MAX_TEXT, FeelLimitError, check_items, check_text
from decisions.feel.values import (
    NUMBERS,
    ZERO,
    FeelError,
    FeelFunction,
    FeelRange,
    YearsMonths,
    feel_compare,
    feel_equal,
    list_contains,
    make_range,
    negate,
    to_text,
    type_name,
)
from wording import Msg, message_of

BUILTINS: dict[str, FeelFunction] = {}
_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

current_budget = limits.current


class _Absent:
    """An optional argument that was not given (as opposed to one given as null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


class _Signature:
    __slots__ = ("names", "required", "variadic")

    def __init__(self, names: Sequence[str], required: int | None = None, variadic: bool = False) -> None:
        self.names = list(names)
        self.required = len(names) if required is None else required
        self.variadic = variadic


def builtin(name: str, *signatures: _Signature | Sequence[str],
            absent: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` as the FEEL function ``name`` with its parameter-name signatures. Optional
    arguments not given are None, or :data:`ABSENT` with ``absent=True`` (for functions where an
    explicit null is an error)."""
    resolved = [sig if isinstance(sig, _Signature) else _Signature(sig) for sig in signatures]

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(args: list[Any] | None, named: dict[str, Any] | None) -> Any:
            bound = _bind(name, resolved, args, named)
            if not absent:
                bound = [None if value is ABSENT else value for value in bound]
            return fn(*bound)

        BUILTINS[name] = FeelFunction(name, None, call)
        return fn

    return register


def _bind(name: str, signatures: list[_Signature], args: list[Any] | None,
          named: dict[str, Any] | None) -> list[Any]:
    if named is not None:
        for sig in signatures:
            if set(named) <= set(sig.names) and all(n in named for n in sig.names[:sig.required]):
                if sig.variadic:
                    return [named.get(sig.names[0])] if len(sig.names) == 1 else [named.get(n) for n in sig.names]
                return [named.get(n, ABSENT) for n in sig.names]
        raise FeelError(Msg("%(name)s() has no parameters named %(names)s", name=name, names=', '.join(sorted(named))))
    assert args is not None
    for sig in signatures:
        if sig.variadic:
            if len(args) >= max(sig.required, 1):
                if len(args) == 1 and len(sig.names) == 1:
                    return [args[0]] if isinstance(args[0], list) else [[args[0]]]
                return [list(args)] if len(sig.names) == 1 else list(args)
            continue
        if sig.required <= len(args) <= len(sig.names):
            return list(args) + [ABSENT] * (len(sig.names) - len(args))
    counts = sorted({len(sig.names) for sig in signatures})
    raise FeelError(Msg("%(name)s() takes %(counts)s arguments, not %(given)s", name=name,
                        counts=" or ".join(map(str, counts)), given=len(args)))


# --------------------------------------------------------------------------------------------- helpers


def _need(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if value is None:
        raise FeelError(Msg("%(what)s is null", what=what))
    if isinstance(value, list) and len(value) == 1 and kind is not list:
        value = value[0]  # a singleton list is its item where a list is not expected (DMN 1.5 §10.3.2.9.4)
        if value is None:
            raise FeelError(Msg("%(what)s is null", what=what))
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool and bool not in (
            kind if isinstance(kind, tuple) else (kind,))):
        raise FeelError(Msg("%(what)s must be a %(kind)s, not a %(type)s", what=what, kind=_kind_name(kind),
                            type=type_name(value)))
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {Decimal: "number", str: "string", bool: "boolean", list: "list", dict: "context", date: "date",
             datetime: "date and time", time: "time", timedelta: "duration", FeelFunction: "function"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _number(value: Any, what: str = "the argument") -> Decimal:
    return _need(value, Decimal, what)


def _string(value: Any, what: str = "the argument") -> str:
    return _need(value, str, what)


def _integer(value: Any, what: str) -> int:
    number = _number(value, what)
    if number != number.to_integral_value():
        number = number.to_integral_value(ROUND_DOWN)
    return int(number)


def _items(value: Any, what: str = "list") -> list[Any]:
    if value is None:
        raise FeelError(Msg("%(what)s is null", what=what))
    items = value if isinstance(value, list) else [value]
    current_budget().charge(len(items))
    return items


def _charge(steps: int) -> None:
    current_budget().charge(steps)


# --------------------------------------------------------------------------------------------- conversion


@builtin("date", ["from"], ["year", "month", "day"])
def _date(a: Any, month: Any = None, day: Any = None, *_: Any) -> date:
    if month is None and day is None:
        value = a
        if isinstance(value, str):
            return temporal.parse_date(value)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        raise FeelError(Msg("date() needs a string, date or date and time, not a %(type)s", type=type_name(value)))
    year, month_number, day_number = (_integer(a, "year"), _integer(month, "month"), _integer(day, "day"))
    try:
        return date(year, month_number, day_number)
    except ValueError:
        raise FeelError(Msg("%(year)s-%(month)s-%(day)s is not a date (years 1..9999)", year=year,
                            month=month_number, day=day_number)) from None


@builtin("date and time", ["from"], ["date", "time"], absent=True)
def _date_and_time(a: Any, b: Any = ABSENT) -> datetime:
    if b is None:
        raise FeelError(Msg("date and time(): time is null"))
    if b is ABSENT:
        if isinstance(a, str):
            return temporal.parse_date_time(a)
        if isinstance(a, datetime):
            return a
        if isinstance(a, date):
            return datetime(a.year, a.month, a.day)
        raise FeelError(Msg("date and time() needs a string, not a %(type)s", type=type_name(a)))
    day = _need(a, date, "date")
    clock = _need(b, time, "time")
    return datetime(day.year, day.month, day.day, clock.hour, clock.minute, clock.second, clock.microsecond,
                    tzinfo=clock.tzinfo)


@builtin("time", ["from"], _Signature(["hour", "minute", "second", "offset"], 3))
def _time(a: Any, minute: Any = None, second: Any = None, offset: Any = None) -> time:
    if minute is None and second is None:
        if isinstance(a, str):
            return temporal.parse_time(a)
        if isinstance(a, datetime):
            return a.timetz() if a.tzinfo is not None else a.time()
        if isinstance(a, time):
            return a
        if isinstance(a, date):
            return time(0, 0, 0, tzinfo=UTC)
        raise FeelError(Msg("time() needs a string, time or date and time, not a %(type)s", type=type_name(a)))
    hour, minute_number = _integer(a, "hour"), _integer(minute, "minute")
    seconds = _number(second, "second")
    whole = int(seconds.to_integral_value(ROUND_FLOOR))
    micro = int(((seconds - whole) * 1_000_000).to_integral_value(ROUND_DOWN))
    zone = None
    if offset is not None:
        zone = temporal.offset_zone(_need(offset, timedelta, "offset"))
    try:
        return time(hour, minute_number, whole, micro, tzinfo=zone)
    except ValueError:
        raise FeelError(Msg("%(hour)s:%(minute)s:%(second)s is not a time", hour=hour,
                            minute=minute_number, second=seconds)) from None


@builtin("number", ["from", "grouping separator", "decimal separator"], _Signature(["from"], 1))
def _to_number(text: Any, grouping: Any = None, decimal_separator: Any = None) -> Decimal:
    source = _string(text, "from")
    if grouping is not None and grouping not in (" ", ",", "."):
        raise FeelError(Msg("the grouping separator must be ' ', ',' or '.'"))
    if decimal_separator is not None and decimal_separator not in (",", "."):
        raise FeelError(Msg("the decimal separator must be ',' or '.'"))
    if grouping is not None and grouping == decimal_separator:
        raise FeelError(Msg("the grouping and decimal separators must differ"))
    if grouping is not None:
        source = source.replace(grouping, "")
    if decimal_separator is not None and decimal_separator != ".":
        source = source.replace(decimal_separator, ".")
    try:
        number = NUMBERS.create_decimal(source.strip()) if _NUMBER_TEXT.fullmatch(source.strip()) else None
    except DecimalException:
        number = None
    if number is None:
        raise FeelError(Msg("'%(text)s' is not a number", text=text))
    return number



@builtin("string", ["from"])
def _string_of(value: Any) -> str | None:
    if value is None:
        return None
    return check_text(to_text(value))


@builtin("duration", ["from"])
def _duration(text: Any) -> timedelta | YearsMonths:
    return temporal.parse_duration(_string(text, "from"))


@builtin("years and months duration", ["from", "to"])
def _years_months(start: Any, end: Any) -> YearsMonths:
    first = _need(start, date, "from")
    last = _need(end, date, "to")
    # whole months between the two dates (the time of day does not count)
    first_day = first.date() if isinstance(first, datetime) else first
    last_day = last.date() if isinstance(last, datetime) else last
    return YearsMonths(temporal.months_between(first_day, last_day))


# --------------------------------------------------------------------------------------------- boolean


@builtin("not", ["negand"])
def _not(value: Any) -> bool | None:
    if isinstance(value, bool):
        return not value
    if value is None:
        return None
    raise FeelError(Msg("not() needs a boolean, not a %(type)s", type=type_name(value)))


@builtin("is defined", ["value"])
def _is_defined(value: Any) -> bool:
    return value is not None


@builtin("get or else", ["value", "default"])
def _get_or_else(value: Any, default: Any) -> Any:
    return default if value is None else value


# --------------------------------------------------------------------------------------------- string


@builtin("substring", _Signature(["string", "start position", "length"], 2))
def _substring(text: Any, start: Any, length: Any = None) -> str:
    source = _string(text, "string")
    position = _integer(start, "start position")
    if position == 0 or abs(position) > len(source):
        if position == 0 or position > len(source):
            raise FeelError(Msg("start position %(position)s is outside the string", position=position))
        position = 1 if position < -len(source) else position
    begin = position - 1 if position > 0 else len(source) + position
    if length is None:
        return source[begin:]
    count = _number(length, "length")
    if count < 0:
        raise FeelError(Msg("length must not be negative"))
    return source[begin:begin + int(count.to_integral_value(ROUND_DOWN))]


@builtin("string length", ["string"])
def _string_length(text: Any) -> Decimal:
    return Decimal(len(_string(text, "string")))


@builtin("upper case", ["string"])
def _upper(text: Any) -> str:
    return check_text(_string(text, "string").upper())


@builtin("lower case", ["string"])
def _lower(text: Any) -> str:
    return check_text(_string(text, "string").lower())


@builtin("substring before", ["string", "match"])
def _before(text: Any, match: Any) -> str:
    source, sought = _string(text, "string"), _string(match, "match")
    index = source.find(sought)
    return "" if index < 0 else source[:index]


@builtin("substring after", ["string", "match"])
def _after(text: Any, match: Any) -> str:
    source, sought = _string(text, "string"), _string(match, "match")
    if not sought:
        return source
    index = source.find(sought)
    return "" if index < 0 else source[index + len(sought):]


@builtin("contains", ["string", "match"])
def _contains(text: Any, match: Any) -> bool:
    return _string(match, "match") in _string(text, "string")


@builtin("starts with", ["string", "match"])
def _starts(text: Any, match: Any) -> bool:
    return _string(text, "string").startswith(_string(match, "match"))


@builtin("ends with", ["string", "match"])
def _ends(text: Any, match: Any) -> bool:
    return _string(text, "string").endswith(_string(match, "match"))


_FLAGS = frozenset("smixq")


@lru_cache(maxsize=256)
def _regex(pattern: str, flags: str) -> Any:
    """An XPath regular expression (with its flags) compiled for RE2."""
    if set(flags) - _FLAGS:
        raise FeelError(Msg("regular expression flags must be among s, m, i, x, q; got '%(flags)s'", flags=flags))
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 8 << 20
    if "q" in flags:
        options.literal = True
    else:
        if "x" in flags:
            pattern = _strip_whitespace(pattern)
        pattern = _translate(pattern, "s" in flags)
    if "i" in flags:
        options.case_sensitive = False
    prefix = ""
    if "s" in flags and "q" not in flags:
        options.dot_nl = True
    if "m" in flags and "q" not in flags:
        prefix = "(?m)"
    try:
        return re2.compile(prefix + pattern, options)
    except re2.error as error:
        raise FeelError(Msg("'%(pattern)s' is not a supported regular expression (%(error)s)", pattern=pattern,
                            error=message_of(error))) from None


def _strip_whitespace(pattern: str) -> str:
    out: list[str] = []
    in_class = False
    for char in pattern:
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        if char in " \t\n\r" and not in_class:
            continue
        out.append(char)
    return "".join(out)


def _translate(pattern: str, dot_all: bool = False) -> str:
    """XPath regex → RE2: back-references are refused (RE2 cannot match them in linear time),
    ``\\p{IsBlock}`` names are refused, ``$`` matches only at the very end (as in XPath)."""
    out: list[str] = []
    index = 0
    in_class = False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            following = pattern[index + 1]
            if following.isdigit():
                raise FeelError(Msg("back-references (\\1 …) are not supported in regular expressions"))
            if following in "pP" and pattern[index + 2:index + 5] == "{Is":
                raise FeelError(Msg("Unicode block names (\\p{IsBasicLatin}) are not supported"))
            out.append(pattern[index:index + 2])
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "-" and in_class and pattern[index + 1:index + 2] == "[":
            raise FeelError(Msg("character class subtraction ([a-z-[aeiou]]) is not supported"))
        elif char == "." and not in_class and not dot_all:
            out.append("[^\\n\\r]")  # XPath's '.' matches neither \n nor \r
            index += 1
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _flags(value: Any) -> str:
    return "" if value is None else _string(value, "flags")


@builtin("matches", _Signature(["input", "pattern", "flags"], 2))
def _matches(text: Any, pattern: Any, flags: Any = None) -> bool:
    source = _string(text, "input")
    compiled = _regex(_string(pattern, "pattern"), _flags(flags))
    _charge(len(source) // 100 + 1)
    return compiled.search(source) is not None


@builtin("replace", _Signature(["input", "pattern", "replacement", "flags"], 3))
def _replace(text: Any, pattern: Any, replacement: Any, flags: Any = None) -> str:
    source = _string(text, "input")
    compiled = _regex(_string(pattern, "pattern"), _flags(flags))
    template = _string(replacement, "replacement")
    literal = "q" in _flags(flags)
    _charge(len(source) // 100 + 1)
    out: list[str] = []
    position = 0
    size = 0
    for match in compiled.finditer(source):
        out.append(source[position:match.start()])
        piece = template if literal else _expand(template, match)
        out.append(piece)
        size += len(piece) + match.start() - position
        if size > MAX_TEXT:
            raise FeelLimitError(Msg("replace() would make a text longer than the limit of %(limit)s characters",
                                     limit=MAX_TEXT))
        position = match.end()
    out.append(source[position:])
    return check_text("".join(out))


def _expand(template: str, match: Any) -> str:
    out: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        if char == "\\" and index + 1 < len(template) and template[index + 1] in "\\$":
            out.append(template[index + 1])
            index += 2
        elif char == "$" and index + 1 < len(template) and template[index + 1].isdigit():
            group = int(template[index + 1])
            out.append(match.group(group) or "" if group <= (match.re.groups or 0) else "")
            index += 2
        elif char in "\\$":
            raise FeelError(Msg("'%(template)s': a '%(char)s' in a replacement must be escaped", template=template,
                                char=char))
        else:
            out.append(char)
            index += 1
    return "".join(out)


@builtin("split", ["string", "delimiter"])
def _split(text: Any, delimiter: Any) -> list[str]:
    source = _string(text, "string")
    compiled = _regex(_string(delimiter, "delimiter"), "")
    _charge(len(source) // 100 + 1)
    parts: list[str] = []
    position = 0
    for match in compiled.finditer(source):
        if match.end() == match.start():
            continue
        parts.append(source[position:match.start()])
        position = match.end()
    parts.append(source[position:])
    check_items(len(parts))
    return parts


@builtin("string join", _Signature(["list", "delimiter"], 1))
def _string_join(items: Any, delimiter: Any = None) -> str:
    values = _items(items)
    separator = "" if delimiter is None else _string(delimiter, "delimiter")
    texts = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, str):
            raise FeelError(Msg("string join() joins strings, not a %(type)s", type=type_name(value)))
        texts.append(value)
    total = sum(map(len, texts)) + len(separator) * max(0, len(texts) - 1)
    if total > MAX_TEXT:
        raise FeelLimitError(Msg("string join() would make a text longer than the limit of %(limit)s characters",
                                 limit=MAX_TEXT))
    return separator.join(texts)


# --------------------------------------------------------------------------------------------- lists


@builtin("list contains", ["list", "element"])
def _list_contains(items: Any, element: Any) -> bool | None:
    return list_contains(_items(items), element)


@builtin("count", _Signature(["list"], 1, variadic=True))
def _count(items: Any) -> Decimal:
    return Decimal(len(_items(items)))


def _numbers(items: Any, what: str) -> list[Decimal]:
    values = _items(items)
    for value in values:
        if not isinstance(value, Decimal):
            raise FeelError(Msg("%(what)s() needs numbers, got a %(type)s", what=what, type=type_name(value)))
    return values


def _comparable(items: Any, what: str) -> list[Any]:
    values = [value for value in _items(items) if value is not None]  # nulls are skipped
    if not values:
        raise FeelError(Msg("%(what)s() of an empty list", what=what))
    first = values[0]
    for value in values[1:]:
        if feel_compare(first, value) is None:
            raise FeelError(Msg("%(what)s() cannot compare a %(type)s with a %(other)s", what=what,
                                type=type_name(first), other=type_name(value)))
    return values


@builtin("min", _Signature(["list"], 1, variadic=True))
def _min(items: Any) -> Any:
    values = _comparable(items, "min")
    best = values[0]
    for value in values[1:]:
        if feel_compare(value, best) == -1:
            best = value
    return best


@builtin("max", _Signature(["list"], 1, variadic=True))
def _max(items: Any) -> Any:
    values = _comparable(items, "max")
    best = values[0]
    for value in values[1:]:
        if feel_compare(value, best) == 1:
            best = value
    return best


@builtin("sum", _Signature(["list"], 1, variadic=True))
def _sum(items: Any) -> Decimal | None:
    values = _numbers(items, "sum")
    if not values:
        return None
    total = ZERO
    for value in values:
        total = NUMBERS.add(total, value)
    return total


@builtin("product", _Signature(["list"], 1, variadic=True))
def _product(items: Any) -> Decimal | None:
    values = _numbers(items, "product")
    if not values:
        return None
    total = Decimal(1)
    for value in values:
        total = NUMBERS.multiply(total, value)
    return total


@builtin("mean", _Signature(["list"], 1, variadic=True))
def _mean(items: Any) -> Decimal:
    values = _numbers(items, "mean")
    if not values:
        raise FeelError(Msg("mean() of an empty list"))
    return NUMBERS.divide(_sum(values), Decimal(len(values)))


@builtin("median", _Signature(["list"], 1, variadic=True))
def _median(items: Any) -> Decimal | None:
    values = sorted(_numbers(items, "median"))
    if not values:
        return None
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return NUMBERS.divide(NUMBERS.add(values[middle - 1], values[middle]), Decimal(2))


@builtin("stddev", _Signature(["list"], 1, variadic=True))
def _stddev(items: Any) -> Decimal:
    values = _numbers(items, "stddev")
    if len(values) < 2:
        raise FeelError(Msg("stddev() needs at least two numbers"))
    mean = NUMBERS.divide(_sum(values), Decimal(len(values)))
    squares = ZERO
    for value in values:
        difference = NUMBERS.subtract(value, mean)
        squares = NUMBERS.add(squares, NUMBERS.multiply(difference, difference))
    return NUMBERS.sqrt(NUMBERS.divide(squares, Decimal(len(values) - 1)))


@builtin("mode", _Signature(["list"], 1, variadic=True))
def _mode(items: Any) -> list[Decimal]:
    values = _numbers(items, "mode")
    counts: dict[Decimal, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    if not counts:
        return []
    most = max(counts.values())
    return sorted(value for value, count in counts.items() if count == most)


@builtin("all", _Signature(["list"], 1, variadic=True))
def _all(items: Any) -> bool | None:
    values = _items(items)
    unknown = False
    for value in values:
        if value is False:
            return False
        if value is not True:
            unknown = True
    return None if unknown else True


@builtin("any", _Signature(["list"], 1, variadic=True))
def _any(items: Any) -> bool | None:
    values = _items(items)
    unknown = False
    for value in values:
        if value is True:
            return True
        if value is not False:
            unknown = True
    return None if unknown else False


@builtin("sublist", _Signature(["list", "start position", "length"], 2))
def _sublist(items: Any, start: Any, length: Any = None) -> list[Any]:
    values = _need(items, list, "list")
    position = _integer(start, "start position")
    if position == 0 or abs(position) > len(values):
        raise FeelError(Msg("start position %(position)s is outside the list", position=position))
    begin = position - 1 if position > 0 else len(values) + position
    if length is None:
        return values[begin:]
    count = _integer(length, "length")
    if count < 0 or begin + count > len(values):
        raise FeelError(Msg("length %(count)s goes past the end of the list", count=count))
    return values[begin:begin + count]


@builtin("append", _Signature(["list", "item"], 1, variadic=True))
def _append(items: Any, *added: Any) -> list[Any]:
    values = _items(items)
    check_items(len(values) + len(added))
    _charge(len(added))
    return [*values, *added]


@builtin("concatenate", _Signature(["list"], 1, variadic=True))
def _concatenate(*lists: Any) -> list[Any]:
    parts = lists[0] if len(lists) == 1 and isinstance(lists[0], list) and all(
        isinstance(part, list) for part in lists[0]) else list(lists)
    result: list[Any] = []
    for part in parts:
        result.extend(_items(part))
        check_items(len(result))
    return result


@builtin("insert before", ["list", "position", "newItem"])
def _insert_before(items: Any, position: Any, new_item: Any) -> list[Any]:
    values = list(_items(items))
    index = _integer(position, "position")
    if index == 0 or abs(index) > len(values):
        raise FeelError(Msg("position %(index)s is outside the list", index=index))
    values.insert(index - 1 if index > 0 else len(values) + index, new_item)
    check_items(len(values))
    return values


@builtin("remove", ["list", "position"])
def _remove(items: Any, position: Any) -> list[Any]:
    values = list(_items(items))
    index = _integer(position, "position")
    if index == 0 or abs(index) > len(values):
        raise FeelError(Msg("position %(index)s is outside the list", index=index))
    del values[index - 1 if index > 0 else index]
    return values


@builtin("reverse", ["list"])
def _reverse(items: Any) -> list[Any]:
    return list(reversed(_items(items)))


@builtin("index of", ["list", "match"])
def _index_of(items: Any, match: Any) -> list[Decimal]:
    return [Decimal(index) for index, value in enumerate(_items(items), start=1) if feel_equal(value, match)]


@builtin("union", _Signature(["list"], 1, variadic=True))
def _union(*lists: Any) -> list[Any]:
    parts = lists[0] if len(lists) == 1 and isinstance(lists[0], list) and all(
        isinstance(part, list) for part in lists[0]) else list(lists)
    result: list[Any] = []
    for part in parts:
        for value in _items(part):
            if not _contains_equal(result, value):
                result.append(value)
    return result


def _contains_equal(values: list[Any], value: Any) -> bool:
    _charge(len(values) // 10 + 1)
    return any(feel_equal(existing, value) is True for existing in values)


@builtin("distinct values", ["list"])
def _distinct(items: Any) -> list[Any]:
    result: list[Any] = []
    for value in _items(items):
        if not _contains_equal(result, value):
            result.append(value)
    return result


@builtin("duplicate values", ["list"])
def _duplicates(items: Any) -> list[Any]:
    seen: list[Any] = []
    duplicates: list[Any] = []
    for value in _items(items):
        if _contains_equal(seen, value):
            if not _contains_equal(duplicates, value):
                duplicates.append(value)
        else:
            seen.append(value)
    return duplicates


@builtin("flatten", ["list"])
def _flatten(items: Any) -> list[Any]:
    result: list[Any] = []
    stack: list[Any] = [iter(_items(items))]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                _charge(len(value))
                stack.append(iter(value))
                break
            result.append(value)
            check_items(len(result))
        else:
            stack.pop()
    return result


@builtin("list replace", ["list", "position", "newItem"], ["list", "match", "newItem"])
def _list_replace(items: Any, position: Any, new_item: Any) -> list[Any]:
    values = list(_items(items))
    if isinstance(position, FeelFunction):
        if position.params is not None and len(position.params) != 2:
            raise FeelError(Msg("list replace(): match must be a function of (item, newItem)"))
        current_budget().charge(len(values))
        replaced = []
        for value in values:
            outcome = position.invoke([value, new_item], None)
            if not isinstance(outcome, bool):
                raise FeelError(Msg("list replace(): match must give true or false"))
            replaced.append(new_item if outcome else value)
        return replaced
    index = _integer(position, "position")
    if index == 0 or abs(index) > len(values):
        raise FeelError(Msg("position %(index)s is outside the list", index=index))
    values[index - 1 if index > 0 else index] = new_item
    return values


@builtin("sort", _Signature(["list", "precedes"], 1))
def _sort(items: Any, precedes: Any = None) -> list[Any]:
    values = list(_items(items))
    _charge(int(len(values) * max(1, math.log2(max(len(values), 2)))))
    if precedes is None:
        def natural(a: Any, b: Any) -> int:
            order = feel_compare(a, b)
            if order is None:
                raise FeelError(Msg("sort() cannot compare a %(type)s with a %(other)s", type=type_name(a),
                                    other=type_name(b)))
            return order
        return sorted(values, key=cmp_to_key(natural))
    function = _need(precedes, FeelFunction, "precedes")
    def ordered(a: Any, b: Any) -> int:
        current_budget().charge()
        if function.invoke([a, b], None) is True:
            return -1
        if function.invoke([b, a], None) is True:
            return 1
        return 0

    return sorted(values, key=cmp_to_key(ordered))


# --------------------------------------------------------------------------------------------- numbers


def _scale(value: Any) -> int:
    scale = _integer(value, "scale")
    if not -6111 <= scale <= 6176:
        raise FeelError(Msg("scale %(scale)s is outside -6111..6176", scale=scale))
    return scale


def _rounded(number: Any, scale: Any, rounding: str) -> Decimal:
    value = _number(number, "n")
    places = _scale(scale)
    try:
        return value.quantize(Decimal(1).scaleb(-places), rounding=rounding, context=NUMBERS)
    except DecimalException:
        if value.adjusted() + places >= NUMBERS.prec:
            return value
        raise


@builtin("decimal", ["n", "scale"])
def _decimal(number: Any, scale: Any) -> Decimal:
    return _rounded(number, scale, ROUND_HALF_EVEN)


@builtin("floor", _Signature(["n", "scale"], 1), absent=True)
def _floor(number: Any, scale: Any = ABSENT) -> Decimal:
    return _rounded(number, ZERO if scale is ABSENT else scale, ROUND_FLOOR)


@builtin("ceiling", _Signature(["n", "scale"], 1), absent=True)
def _ceiling(number: Any, scale: Any = ABSENT) -> Decimal:
    return _rounded(number, ZERO if scale is ABSENT else scale, ROUND_CEILING)


@builtin("round up", ["n", "scale"])
def _round_up(number: Any, scale: Any) -> Decimal:
    return _rounded(number, scale, ROUND_UP)


@builtin("round down", ["n", "scale"])
def _round_down(number: Any, scale: Any) -> Decimal:
    return _rounded(number, scale, ROUND_DOWN)


@builtin("round half up", ["n", "scale"])
def _round_half_up(number: Any, scale: Any) -> Decimal:
    return _rounded(number, scale, ROUND_HALF_UP)


@builtin("round half down", ["n", "scale"])
def _round_half_down(number: Any, scale: Any) -> Decimal:
    return _rounded(number, scale, ROUND_HALF_DOWN)


@builtin("abs", ["n"])
def _abs(value: Any) -> Any:
    if isinstance(value, Decimal):
        return abs(value)
    if isinstance(value, timedelta):
        return abs(value)
    if isinstance(value, YearsMonths):
        return YearsMonths(abs(value.months))
    raise FeelError(Msg("abs() needs a number or duration, not a %(type)s", type=type_name(value)))


@builtin("modulo", ["dividend", "divisor"])
def _modulo(dividend: Any, divisor: Any) -> Decimal:
    a, b = _number(dividend, "dividend"), _number(divisor, "divisor")
    if b == 0:
        raise FeelError(Msg("modulo by zero"))
    quotient = NUMBERS.divide(a, b).to_integral_value(ROUND_FLOOR)
    return NUMBERS.subtract(a, NUMBERS.multiply(b, quotient))


@builtin("sqrt", ["number"])
def _sqrt(value: Any) -> Decimal:
    number = _number(value, "number")
    if number < 0:
        raise FeelError(Msg("sqrt() of a negative number"))
    return NUMBERS.sqrt(number)


@builtin("log", ["number"])
def _log(value: Any) -> Decimal:
    number = _number(value, "number")
    if number <= 0:
        raise FeelError(Msg("log() of a number that is not positive"))
    return NUMBERS.ln(number)


@builtin("exp", ["number"])
def _exp(value: Any) -> Decimal:
    return NUMBERS.exp(_number(value, "number"))


@builtin("odd", ["number"])
def _odd(value: Any) -> bool:
    number = _number(value, "number")
    if number != number.to_integral_value():
        raise FeelError(Msg("odd() needs a whole number"))
    return int(number) % 2 == 1


@builtin("even", ["number"])
def _even(value: Any) -> bool:
    number = _number(value, "number")
    if number != number.to_integral_value():
        raise FeelError(Msg("even() needs a whole number"))
    return int(number) % 2 == 0


# --------------------------------------------------------------------------------------------- date and time


@builtin("is", _Signature(["value1", "value2"], 0))
def _is(first: Any = None, second: Any = None) -> bool:
    if type_name(first) != type_name(second):
        return False
    if isinstance(first, time | datetime):
        return bool(first == second and first.tzinfo == second.tzinfo
                    and first.utcoffset() == second.utcoffset()) if first.tzinfo or second.tzinfo else first == second
    return feel_equal(first, second) is True


def _date_of(value: Any) -> date:
    return _need(value, date, "date")


@builtin("day of year", ["date"])
def _day_of_year(value: Any) -> Decimal:
    return Decimal(_date_of(value).timetuple().tm_yday)


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


@builtin("day of week", ["date"])
def _day_of_week(value: Any) -> str:
    return _DAYS[_date_of(value).weekday()]


@builtin("month of year", ["date"])
def _month_of_year(value: Any) -> str:
    return _MONTHS[_date_of(value).month - 1]


@builtin("week of year", ["date"])
def _week_of_year(value: Any) -> Decimal:
    return Decimal(_date_of(value).isocalendar()[1])


def _now() -> datetime:
    fixed = current_budget().now
    if isinstance(fixed, datetime):
        return fixed
    return datetime.now(UTC)  # outside workflows only: workflows fix ``now`` on the budget


@builtin("now", [])
def _now_function() -> datetime:
    return _now()


@builtin("today", [])
def _today() -> date:
    return _now().date()


@builtin("last day of month", ["date"])
def _last_day(value: Any) -> date:
    day = _date_of(value)
    following = temporal.add_months(date(day.year, day.month, 1), 1) if (day.year, day.month) != (9999, 12) \
        else date(9999, 12, 31) + timedelta(days=1)
    return following - timedelta(days=1)


# --------------------------------------------------------------------------------------------- ranges (DMN 1.4)


def _as_range(value: Any, what: str) -> FeelRange:
    if isinstance(value, FeelRange):
        return value
    if value is None:
        raise FeelError(Msg("%(what)s is null", what=what))
    return FeelRange(value, value, True, True)


def _cmp(a: Any, b: Any) -> int:
    order = feel_compare(a, b)
    if order is None:
        raise FeelError(Msg("cannot compare a %(type)s with a %(other)s", type=type_name(a), other=type_name(b)))
    return order


def _point_or_range(name: str, point_point: Callable[[Any, Any], bool] | None,
                    point_range: Callable[[Any, FeelRange], bool] | None,
                    range_point: Callable[[FeelRange, Any], bool] | None,
                    range_range: Callable[[FeelRange, FeelRange], bool]) -> None:
    signatures = [_Signature(["point1", "point2"]), _Signature(["point", "range"]), _Signature(["range", "point"]),
                  _Signature(["range1", "range2"])]

    def call(args: list[Any] | None, named: dict[str, Any] | None) -> Any:
        if named is not None:
            keys = set(named)
            sig = next((sig for sig in signatures if keys == set(sig.names)), None)
            if sig is None:
                raise FeelError(Msg("%(name)s() has no parameters named %(names)s", name=name,
                                    names=', '.join(sorted(keys))))
            a, b = named[sig.names[0]], named[sig.names[1]]
            kinds = (sig.names[0].startswith("range"), sig.names[1].startswith("range"))
        else:
            if args is None or len(args) != 2:
                raise FeelError(Msg("%(name)s() takes 2 arguments", name=name))
            a, b = args
            kinds = (isinstance(a, FeelRange), isinstance(b, FeelRange))
        if a is None or b is None:
            raise FeelError(Msg("%(name)s() of null", name=name))
        if kinds == (False, False):
            if point_point is None:
                return range_range(_as_range(a, "point1"), _as_range(b, "point2"))
            return point_point(a, b)
        if kinds == (False, True):
            if point_range is None:
                return range_range(_as_range(a, "point"), _need(b, FeelRange, "range"))
            return point_range(a, _need(b, FeelRange, "range"))
        if kinds == (True, False):
            if range_point is None:
                return range_range(_need(a, FeelRange, "range"), _as_range(b, "point"))
            return range_point(_need(a, FeelRange, "range"), b)
        return range_range(_need(a, FeelRange, "range1"), _need(b, FeelRange, "range2"))

    BUILTINS[name] = FeelFunction(name, None, call)


def _start(r: FeelRange) -> Any:
    return r.start


def _end(r: FeelRange) -> Any:
    return r.end


def _before_rr(a: FeelRange, b: FeelRange) -> bool:
    order = _cmp(a.end, b.start)
    return order < 0 or (order == 0 and not (a.end_included and b.start_included))


_point_or_range(
    "before",
    lambda p, q: _cmp(p, q) < 0,
    lambda p, r: _cmp(p, r.start) < 0 or (_cmp(p, r.start) == 0 and not r.start_included),
    lambda r, p: _cmp(r.end, p) < 0 or (_cmp(r.end, p) == 0 and not r.end_included),
    _before_rr,
)
_point_or_range(
    "after",
    lambda p, q: _cmp(p, q) > 0,
    lambda p, r: _cmp(p, r.end) > 0 or (_cmp(p, r.end) == 0 and not r.end_included),
    lambda r, p: _cmp(r.start, p) > 0 or (_cmp(r.start, p) == 0 and not r.start_included),
    lambda a, b: _before_rr(b, a),
)
_point_or_range("meets", None, None, None,
                lambda a, b: a.end_included and b.start_included and _cmp(a.end, b.start) == 0)
_point_or_range("met by", None, None, None,
                lambda a, b: b.end_included and a.start_included and _cmp(b.end, a.start) == 0)


def _overlaps(a: FeelRange, b: FeelRange) -> bool:
    def starts_before_end(x: FeelRange, y: FeelRange) -> bool:  # x.start is before y.end
        order = _cmp(x.start, y.end)
        return order < 0 or (order == 0 and x.start_included and y.end_included)

    return starts_before_end(a, b) and starts_before_end(b, a)


def _overlaps_before(a: FeelRange, b: FeelRange) -> bool:
    start = _cmp(a.start, b.start)
    end_start = _cmp(a.end, b.start)
    end_end = _cmp(a.end, b.end)
    return ((start < 0 or (start == 0 and a.start_included and not b.start_included))
            and (end_start > 0 or (end_start == 0 and a.end_included and b.start_included))
            and (end_end < 0 or (end_end == 0 and (not a.end_included or b.end_included))))


_point_or_range("overlaps", None, None, None, _overlaps)
_point_or_range("overlaps before", None, None, None, _overlaps_before)
_point_or_range("overlaps after", None, None, None, lambda a, b: _overlaps_before(b, a))


def _finishes_rr(a: FeelRange, b: FeelRange) -> bool:
    start = _cmp(a.start, b.start)
    return (a.end_included == b.end_included and _cmp(a.end, b.end) == 0
            and (start > 0 or (start == 0 and (not a.start_included or b.start_included))))


_point_or_range("finishes", None, lambda p, r: r.end_included and _cmp(r.end, p) == 0, None, _finishes_rr)
_point_or_range("finished by", None, None, lambda r, p: r.end_included and _cmp(r.end, p) == 0,
                lambda a, b: _finishes_rr(b, a))


def _includes_rr(a: FeelRange, b: FeelRange) -> bool:
    start = _cmp(a.start, b.start)
    end = _cmp(a.end, b.end)
    return ((start < 0 or (start == 0 and (a.start_included or not b.start_included)))
            and (end > 0 or (end == 0 and (a.end_included or not b.end_included))))


def _includes_rp(r: FeelRange, p: Any) -> bool:
    start, end = _cmp(r.start, p), _cmp(p, r.end)
    return (start < 0 or (start == 0 and r.start_included)) and (end < 0 or (end == 0 and r.end_included))


_point_or_range("includes", None, None, _includes_rp, _includes_rr)
_point_or_range("during", None, lambda p, r: _includes_rp(r, p), None, lambda a, b: _includes_rr(b, a))


def _starts_rr(a: FeelRange, b: FeelRange) -> bool:
    end = _cmp(a.end, b.end)
    return (a.start_included == b.start_included and _cmp(a.start, b.start) == 0
            and (end < 0 or (end == 0 and (not a.end_included or b.end_included))))


_point_or_range("starts", None, lambda p, r: r.start_included and _cmp(r.start, p) == 0, None, _starts_rr)
_point_or_range("started by", None, None, lambda r, p: r.start_included and _cmp(r.start, p) == 0,
                lambda a, b: _starts_rr(b, a))
_point_or_range("coincides", lambda p, q: _cmp(p, q) == 0, None, None,
                lambda a, b: (a.start_included == b.start_included and a.end_included == b.end_included
                              and _cmp(a.start, b.start) == 0 and _cmp(a.end, b.end) == 0))


@builtin("range", ["from"])
def _range_from(text: Any) -> FeelRange:
    source = _string(text, "from").strip()
    try:
        tree = syntax.parse_expression(source)
    except syntax.FeelSyntaxError:
        raise FeelError(Msg("'%(source)s' is not a range", source=source)) from None
    if not isinstance(tree, syntax.RangeExpr):
        raise FeelError(Msg("'%(source)s' is not a range such as [1..10]", source=source))
    for part in (tree.start, tree.end):
        if part is not None and not _literal_end(part):
            raise FeelError(Msg("'%(source)s': range ends must be literals", source=source))
    low = _literal_value(tree.start) if tree.start is not None else None
    high = _literal_value(tree.end) if tree.end is not None else None
    try:
        return make_range(low, high, tree.start_included, tree.end_included)
    except FeelError as error:
        current_budget().note(message_of(error))
        raise FeelError(Msg("'%(source)s' is not a range", source=source)) from None


def _literal_end(node: Any) -> bool:
    if isinstance(node, syntax.Literal | syntax.TemporalLiteral):
        return True
    if isinstance(node, syntax.Negation):
        return _literal_end(node.operand)
    return (isinstance(node, syntax.Call) and isinstance(node.target, syntax.Name)
            and node.target.name in ("date", "time", "date and time", "duration") and node.named is None
            and len(node.args) == 1 and isinstance(node.args[0], syntax.Literal)
            and isinstance(node.args[0].value, str))


def _literal_value(node: Any) -> Any:
    """The value of a range end that :func:`_literal_end` accepted, as the evaluator gives it (a
    literal that is not a valid value is null, the reason noted)."""
    if isinstance(node, syntax.Literal):
        return node.value
    if isinstance(node, syntax.Negation):
        try:
            return negate(_literal_value(node.operand))
        except FeelError as error:
            current_budget().note(message_of(error))
            return None
    if isinstance(node, syntax.TemporalLiteral):
        try:
            return temporal.parse_temporal(node.text)
        except FeelError as error:
            current_budget().note(message_of(error))
            return None
    current_budget().charge()
    return BUILTINS[node.target.name].invoke([node.args[0].value], None)


# --------------------------------------------------------------------------------------------- contexts


@builtin("get value", ["m", "key"])
def _get_value(context: Any, key: Any) -> Any:
    mapping = _need(context, dict, "m")
    if isinstance(key, list):
        current: Any = mapping
        for part in key:
            if not isinstance(current, dict):
                return None
            current = current.get(_string(part, "key"))
        return current
    return mapping.get(_string(key, "key"))


@builtin("get entries", ["m"])
def _get_entries(context: Any) -> list[dict[str, Any]]:
    mapping = _need(context, dict, "m")
    _charge(len(mapping))
    return [{"key": key, "value": value} for key, value in mapping.items()]


@builtin("context", ["entries"])
def _context(entries: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for entry in _items(entries):
        if not isinstance(entry, dict) or "key" not in entry or "value" not in entry:
            raise FeelError(Msg("context() needs entries like {key: \"a\", value: 1}"))
        key = _string(entry["key"], "key")
        if key in result:
            raise FeelError(Msg("context(): the key '%(key)s' appears twice", key=key))
        result[key] = entry["value"]
    return result


def _context_put_call(args: list[Any] | None, named: dict[str, Any] | None) -> Any:
    if named is not None:
        if set(named) == {"context", "key", "value"}:
            return _context_put(named["context"], _string(named["key"], "key"), named["value"])
        if set(named) == {"context", "keys", "value"}:
            return _context_put(named["context"], _need(named["keys"], list, "keys"), named["value"])
        raise FeelError(Msg("context put() has no parameters named %(names)s", names=', '.join(sorted(named))))
    if args is None or len(args) != 3:
        raise FeelError(Msg("context put() takes 3 arguments"))
    return _context_put(*args)


def _context_put(context: Any, key: Any, value: Any) -> dict[str, Any]:
    mapping = _need(context, dict, "context")
    if isinstance(key, list):
        if not key:
            raise FeelError(Msg("context put(): keys is empty"))
        first = _string(key[0], "keys")
        if len(key) == 1:
            return {**mapping, first: value}
        inner = mapping.get(first)
        if inner is not None and not isinstance(inner, dict):
            raise FeelError(Msg("context put(): '%(first)s' is not a context", first=first))
        return {**mapping, first: _context_put(inner or {}, key[1:], value)}
    return {**mapping, _string(key, "key"): value}


BUILTINS["context put"] = FeelFunction("context put", None, _context_put_call)


@builtin("context merge", _Signature(["contexts"], 1, variadic=True))
def _context_merge(contexts: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for context in _items(contexts):
        result.update(_need(context, dict, "contexts"))
    return result


