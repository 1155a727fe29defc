"""FEEL values as Python values, and FEEL's equality and ordering.

=============================  ===============================================================
FEEL type                      Python value
=============================  ===============================================================
null                           ``None``
boolean                        ``bool``
number                         ``Decimal`` (34 significant digits, :data:`NUMBERS`)
string                         ``str``
date                           ``datetime.date``
time                           ``datetime.time`` (naive, or with a fixed offset or an IANA zone)
date and time                  ``datetime.datetime`` (naive = local, or with offset or zone)
days and time duration         ``datetime.timedelta``
years and months duration      :class:`YearsMonths`
list                           ``list``
context                        ``dict`` with ``str`` keys, in entry order
range                          :class:`FeelRange`
function                       :class:`FeelFunction`
=============================  ===============================================================

Values going in are converted with :func:`to_feel` (ints and floats become Decimals; floats by
their shortest repr, so 0.1 is 0.1). Comparing values of different types gives null (FEEL's
three-valued logic); :func:`feel_equal` and :func:`feel_compare` implement DMN 1.5 §10.3.2.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Any
from zoneinfo import ZoneInfo

from decisions.feel.limits import current as current_budget
from wording import Msg, message_of

#: FEEL's number semantics: IEEE 754-2008 decimal128 (34 digits, half-even rounding). Overflow,
#: division by zero and invalid operations raise, and the evaluator turns them into null.
NUMBERS = Context(prec=34, rounding=ROUND_HALF_EVEN, Emax=6144, Emin=-6143,
                  traps=[InvalidOperation, DivisionByZero, Overflow])
ZERO = Decimal(0)
ONE = Decimal(1)


class FeelError(Exception):
    """Evaluating FEEL failed in a way FEEL turns into null (a wrong argument, a type mismatch …)."""


@dataclass(frozen=True, slots=True)
class YearsMonths:
    """A years and months duration, as a whole number of months (``P1Y2M`` = 14)."""

    months: int

    def __str__(self) -> str:
        sign = "-" if self.months < 0 else ""
        years, months = divmod(abs(self.months), 12)
        if not years and not months:
            return "P0M"
        return f"{sign}P" + (f"{years}Y" if years else "") + (f"{months}M" if months else "")


class _Unbounded:
    """The missing end of a range written as a comparison (``< 10`` has no start)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNBOUNDED"


UNBOUNDED: Any = _Unbounded()


@dataclass(frozen=True, slots=True)
class FeelRange:
    """A range (interval). An end that is :data:`UNBOUNDED` is open-ended (``< 10``); an end that is
    None is null (``(null..10]``: comparisons with it are null). ``operator`` is ``=`` or ``!=`` for
    the ranges ``=10`` and ``!=10`` (DMN 1.5), empty otherwise."""

    start: Any
    end: Any
    start_included: bool
    end_included: bool
    operator: str = ""

    def __str__(self) -> str:
        if self.operator:
            return f"{self.operator}{literal_text(self.start)}"
        if self.start is UNBOUNDED:
            return f"{'<=' if self.end_included else '<'} {literal_text(self.end)}"
        if self.end is UNBOUNDED:
            return f"{'>=' if self.start_included else '>'} {literal_text(self.start)}"
        return (f"{'[' if self.start_included else '('}{literal_text(self.start)}.."
                f"{literal_text(self.end)}{']' if self.end_included else ')'}")


@dataclass(eq=False, slots=True)
class FeelFunction:
    """A function value: a built-in, a user-defined ``function(a, b) …``, a BKM or a decision service.

    ``call(positional, named)`` gets either positional arguments or named ones (the other is None).
    ``params`` are the parameter names (None for built-ins whose overloads are resolved by
    ``call`` itself); ``param_types`` their type names when declared.
    """

    name: str
    params: list[str] | None
    call: Callable[[list[Any] | None, dict[str, Any] | None], Any]
    param_types: list[str | None] = field(default_factory=list)
    result_type: str | None = None

    def __str__(self) -> str:
        return f"function {self.name}"

    def invoke(self, args: list[Any] | None, named: dict[str, Any] | None) -> Any:
        """Call the function as FEEL does: a FeelError (or a number out of range) becomes null, its
        reason noted on the running evaluation's budget; a limit error goes through to the caller."""
        try:
            return self.call(args, named)
        except FeelError as error:
            return _null(Msg("%(function)s: %(error)s", function=self.name, error=message_of(error)))
        except DecimalException:
            return _null(Msg("%(function)s: a number is out of FEEL's range (or divided by zero)",
                             function=self.name))
        except (OverflowError, ValueError) as error:
            return _null(Msg("%(function)s: out of range (%(error)s)", function=self.name, error=error))


def _null(message: str) -> None:
    current_budget().note(message)
    return None


# --------------------------------------------------------------------------------------------- types

TYPE_NAMES = ("Null", "boolean", "number", "string", "date", "time", "date and time",
              "days and time duration", "years and months duration", "list", "context", "range", "function")


def type_name(value: Any) -> str:
    """The FEEL type of a (converted) value."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date and time"
    if isinstance(value, date):
        return "date"
    if isinstance(value, time):
        return "time"
    if isinstance(value, timedelta):
        return "days and time duration"
    if isinstance(value, YearsMonths):
        return "years and months duration"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "context"
    if isinstance(value, FeelRange):
        return "range"
    if isinstance(value, FeelFunction):
        return "function"
    return type(value).__name__


def number(value: int | float | str | Decimal) -> Decimal:
    """A Python number (or numeric text) as a FEEL number, rounded to 34 digits."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FeelError(Msg("%(value)s is not a FEEL number", value=value))
        value = repr(value)
    return NUMBERS.plus(Decimal(value)) if not isinstance(value, int) or abs(value) >= 10 ** 34 \
        else Decimal(value)


def to_feel(value: Any) -> Any:
    """A Python value (JSON-ish, dates, Decimals) as a FEEL value. Raises :class:`FeelError` for
    values FEEL has no type for."""
    if value is None or isinstance(value, bool | str | Decimal | date | time | timedelta | YearsMonths
                                   | FeelRange | FeelFunction):
        return value
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, Mapping):
        return {str(key): to_feel(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_feel(item) for item in value]
    raise FeelError(Msg("a %(name)s is not a FEEL value", name=type(value).__name__))


# --------------------------------------------------------------------------------------------- text
# every value's text lives here, temporal ones included, so that temporal.py (parsing and
# arithmetic) builds on this module and not the other way round


def _fraction(microsecond: int) -> str:
    return f".{microsecond:06d}".rstrip("0") if microsecond else ""


def _zone_text(tz: tzinfo | None, offset: timedelta | None) -> str:
    if tz is None:
        return ""
    if isinstance(tz, ZoneInfo):
        return f"@{tz.key}"
    if offset is None or not offset:
        return "Z"
    sign = "-" if offset < timedelta(0) else "+"
    seconds = int(abs(offset).total_seconds())
    text = f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}"
    return text + (f":{seconds % 60:02d}" if seconds % 60 else "")


def format_date(value: date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def format_time(value: time) -> str:
    offset = value.tzinfo.utcoffset(None) if isinstance(value.tzinfo, timezone) else None
    return (f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}{_fraction(value.microsecond)}"
            + _zone_text(value.tzinfo, offset))


def format_date_time(value: datetime) -> str:
    return (f"{format_date(value)}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
            f"{_fraction(value.microsecond)}{_zone_text(value.tzinfo, value.utcoffset())}")


def format_duration(value: timedelta) -> str:
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days, seconds, micro = value.days, value.seconds, value.microseconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs or micro:
        clock += f"{secs}{_fraction(micro)}S"
    if clock:
        text += "T" + clock
    return text if (days or clock) else "PT0S"


def format_value(value: date | time | timedelta) -> str:
    """A date, time, date and time or days and time duration as FEEL writes it (``2026-11-11``,
    ``10:30:00@Asia/Shanghai``, ``P1DT2H``): the text inside an ``@"…"`` literal."""
    if isinstance(value, datetime):
        return format_date_time(value)
    if isinstance(value, date):
        return format_date(value)
    if isinstance(value, time):
        return format_time(value)
    return format_duration(value)


def number_text(value: Decimal) -> str:
    """``1``, ``1.5``, ``-0.25`` — no exponent, no trailing zeros."""
    if not value.is_finite():
        return str(value)
    if value == 0:
        return "0"
    text = format(value.normalize(NUMBERS), "f")
    return text


def to_text(value: Any) -> str:
    """The FEEL ``string()`` of a value (strings unquoted at the top level)."""
    if isinstance(value, str):
        return value
    return literal_text(value, top=True)


def literal_text(value: Any, top: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return number_text(value)
    if isinstance(value, str):
        return value if top else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, datetime | date | time | timedelta):
        return format_value(value)
    if isinstance(value, YearsMonths | FeelRange | FeelFunction):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {literal_text(item)}" for key, item in value.items()) + "}"
    return str(value)


# --------------------------------------------------------------------------------------------- equality


def _offset(value: time | datetime) -> timedelta | None:
    tz = value.tzinfo
    if tz is None:
        return None
    if isinstance(value, datetime):
        return value.utcoffset()
    return _time_offset(value, tz)


def _time_offset(value: time, tz: tzinfo) -> timedelta | None:
    if isinstance(tz, timezone):
        return tz.utcoffset(None)
    # a time in a named zone: the zone's offset today is undefined; use its standard offset on 1 Jan 1970
    return datetime(1970, 1, 1, value.hour, value.minute, value.second, tzinfo=tz).utcoffset()


def time_key(value: time) -> tuple[int, Decimal]:
    """Seconds since midnight (UTC when the time has an offset); the first item tells local (0) from offset (1)."""
    seconds = Decimal(value.hour * 3600 + value.minute * 60 + value.second) + Decimal(value.microsecond) / 1_000_000
    offset = _offset(value)
    if offset is None:
        return 0, seconds
    return 1, (seconds - Decimal(int(offset.total_seconds()))) % 86400


def feel_equal(left: Any, right: Any) -> bool | None:
    """FEEL ``=``: null only equals null; values of different types are not comparable (null)."""
    if left is None or right is None:
        return left is None and right is None
    kind = type_name(left)
    if kind != type_name(right):
        return None
    if kind == "list":
        if len(left) != len(right):
            return False
        outcome: bool | None = True
        for a, b in zip(left, right, strict=True):
            equal = feel_equal(a, b)
            if equal is False:
                return False
            if equal is None:
                outcome = None
        return outcome
    if kind == "context":
        if left.keys() != right.keys():
            return False
        outcome = True
        for key, item in left.items():
            equal = feel_equal(item, right[key])
            if equal is False:
                return False
            if equal is None:
                outcome = None
        return outcome
    if kind == "date and time":
        if (left.tzinfo is None) != (right.tzinfo is None):
            return False
        return bool(left == right)
    if kind == "time":
        return time_key(left) == time_key(right)
    if kind == "range":
        def same_end(a: Any, b: Any) -> bool:
            return a is b if a is UNBOUNDED or b is UNBOUNDED else feel_equal(a, b) is True

        return (left.operator == right.operator and left.start_included == right.start_included
                and left.end_included == right.end_included and same_end(left.start, right.start)
                and same_end(left.end, right.end))
    if kind == "function":
        return left is right
    return bool(left == right)


_ORDERED = frozenset({"number", "string", "date", "time", "date and time", "days and time duration",
                      "years and months duration"})


def feel_compare(left: Any, right: Any) -> int | None:
    """-1, 0 or 1 as ``left`` sorts before, with or after ``right``; None when they cannot be ordered."""
    if left is None or right is None:
        return None
    kind = type_name(left)
    if kind != type_name(right) or kind not in _ORDERED:
        return None
    a: Any
    b: Any
    if kind == "time":
        a, b = time_key(left), time_key(right)
        if a[0] != b[0]:
            return None
    elif kind == "date and time":
        if (left.tzinfo is None) != (right.tzinfo is None):
            return None
        a, b = left, right
    elif kind == "years and months duration":
        a, b = left.months, right.months
    else:
        a, b = left, right
    return int(a > b) - int(a < b)


def in_range(value: Any, rng: FeelRange) -> bool | None:
    """Whether ``value`` lies in the range (null when it cannot be compared with the ends)."""
    if rng.operator:
        equal = feel_equal(value, rng.start)
        return equal if rng.operator == "=" or equal is None else not equal
    if rng.start is not UNBOUNDED:
        order = feel_compare(value, rng.start)
        if order is None:
            return None
        if order < 0 or (order == 0 and not rng.start_included):
            return False
    if rng.end is not UNBOUNDED:
        order = feel_compare(value, rng.end)
        if order is None:
            return None
        if order > 0 or (order == 0 and not rng.end_included):
            return False
    return True


RANGE_TYPES = frozenset({"number", "string", "date", "time", "date and time", "days and time duration",
                         "years and months duration"})


def make_range(low: Any, high: Any, start_included: bool, end_included: bool) -> FeelRange:
    """The range ``[low..high]`` (ends included or not); a null end stays null. FeelError when the
    ends are of different or unordered types, or the range ends before it starts."""
    if low is not None and high is not None:
        if type_name(low) != type_name(high):
            raise FeelError(Msg("a range from a %(low)s to a %(high)s", low=type_name(low),
                                high=type_name(high)))
        order = feel_compare(low, high)
        if order is None or order > 0:
            raise FeelError(Msg("a range must not end before it starts (%(low)s > %(high)s)",
                                low=literal_text(low), high=literal_text(high)))
    for bound in (low, high):
        if bound is not None and type_name(bound) not in RANGE_TYPES:
            raise FeelError(Msg("a range of %(type)s values", type=type_name(bound)))
    if low is None and high is None:
        raise FeelError(Msg("a range needs a start or an end"))
    return FeelRange(low, high, start_included, end_included)


def negate(value: Any) -> Any:
    """``-value`` for numbers and durations; null stays null."""
    if isinstance(value, Decimal):
        return NUMBERS.minus(value)
    if isinstance(value, timedelta):
        return -value
    if isinstance(value, YearsMonths):
        return YearsMonths(-value.months)
    if value is None:
        return None
    raise FeelError(Msg("cannot negate a %(type)s", type=type_name(value)))


def list_contains(items: Sequence[Any], value: Any) -> bool:
    """``list contains(items, value)``: true if some item equals the value (items of another type
    are simply not equal here)."""
    return any(feel_equal(item, value) is True for item in items)
