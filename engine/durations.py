"""ISO 8601 durations (``PT30M``, ``P1D``, ``P1W``) as used in flow documents.

Months and years are refused on purpose: their length depends on the calendar,
so a journey that says "wait P1M" would mean different things on different
days. Use ``P30D`` or a ``wait.until`` on a date instead.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from engine.text import Msg

_PATTERN = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


class DurationError(ValueError):
    """A duration string that is not ISO 8601."""


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration such as ``P1DT2H`` into a timedelta."""
    if not isinstance(text, str):
        raise DurationError(Msg("expected an ISO 8601 duration string such as 'P1D', got %(name)s",
                                name=type(text).__name__))
    value = text.strip().upper()
    if re.search(r"^P[^T]*\d+[MY]", value):
        raise DurationError(Msg("'%(text)s': months and years have no fixed length; write days instead, e.g. 'P30D'",
                                text=text))
    match = _PATTERN.match(value)
    if not match:
        raise DurationError(Msg("'%(text)s' is not an ISO 8601 duration; write e.g. 'PT30M', 'P1D' or 'P1DT12H'",
                                text=text))
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    result = timedelta(
        weeks=parts["weeks"],
        days=parts["days"],
        hours=parts["hours"],
        minutes=parts["minutes"],
        seconds=parts["seconds"],
    )
    if result <= timedelta(0):
        raise DurationError(Msg("'%(text)s' is zero; a duration must be longer than zero", text=text))
    return result


#: the units a person picks in the duration widget, largest first, with their length in seconds
UNITS: dict[str, int] = {"weeks": 7 * 86400, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
#: the units the widget shows a stored duration in (weeks only when the user picks them: "7 天" reads better)
_SHOWN = ("days", "hours", "minutes", "seconds")


def format_duration(value: timedelta) -> str:
    """The canonical ISO 8601 text of a positive duration: days, then hours, minutes and seconds
    (``timedelta(days=1, hours=2)`` → ``P1DT2H``, 90 minutes → ``PT1H30M``). Weeks are written as days."""
    if value <= timedelta(0):
        raise DurationError(Msg("a duration must be longer than zero"))
    micros = value // timedelta(microseconds=1)
    days, rest = divmod(micros, 86400 * 10**6)
    hours, rest = divmod(rest, 3600 * 10**6)
    minutes, rest = divmod(rest, 60 * 10**6)
    seconds, fraction = divmod(rest, 10**6)
    clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M")) if n)
    if seconds or fraction:
        clock += f"{seconds}.{fraction:06d}".rstrip("0") + "S" if fraction else f"{seconds}S"
    return "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")


def to_amount(text: str) -> tuple[str, str]:
    """A stored duration as the widget shows it: (number, unit) in the largest unit that divides it
    evenly — ``P7D`` → ("7", "days"), ``PT30M`` → ("30", "minutes"), ``P1DT2H`` → ("26", "hours")."""
    value = parse_duration(text)
    micros = value // timedelta(microseconds=1)
    for unit in _SHOWN:
        size = UNITS[unit] * 10**6
        if micros % size == 0:
            return str(micros // size), unit
    return f"{value.total_seconds():f}".rstrip("0").rstrip("."), "seconds"


def from_amount(number: str, unit: str) -> str:
    """What the widget posts back as ISO 8601: ``("26", "hours")`` → ``P1DT2H``. Raises
    :class:`DurationError` naming what is wrong (not a number, zero or less, unknown unit, too long)."""
    if unit not in UNITS:
        raise DurationError(Msg("unknown unit '%(unit)s'; use one of %(units)s", unit=unit, units=", ".join(UNITS)))
    text = number.strip().replace(",", "")
    if not re.fullmatch(r"\d{1,9}(\.\d{1,6})?", text):
        raise DurationError(Msg("'%(number)s' is not a number of %(unit)s; write a positive number such as 7 or 1.5",
                                number=number, unit=unit))
    micros = int(Decimal(text) * UNITS[unit] * 10**6)
    if micros <= 0:
        raise DurationError(Msg("a duration must be longer than zero"))
    if micros > 3660 * 86400 * 10**6:
        raise DurationError(Msg("%(number)s %(unit)s is more than ten years; write a shorter duration", number=number,
                                unit=unit))
    return format_duration(timedelta(microseconds=micros))
