"""FEEL's date, time, date and time and duration values: parsing and arithmetic (their text is
:func:`decisions.feel.values.format_value`, with every other value's).

Dates and times are Python ``date``/``time``/``datetime`` values, so they hold years 1–9999 and
microseconds (FEEL allows ±999,999,999 and nanoseconds: such values are refused, giving null).
A time or date and time is *local* (no zone), has a fixed *offset* (``+02:00``, ``Z``) or an IANA
*zone* (``@Europe/Paris``, kept as a ``ZoneInfo``, printed back as ``@Europe/Paris``). Arithmetic
across zones works on instants: ``@"2026-03-29T03:00:00@Europe/Paris" - @"2026-03-28T03:00:00@Europe/Paris"``
is ``PT23H`` (the clocks went forward).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from decisions.feel.values import NUMBERS, FeelError, YearsMonths, format_duration
from wording import Msg

_DATE = re.compile(r"(-?)([1-9]\d{4,8}|\d{4})-(\d\d)-(\d\d)")
_TIME = re.compile(r"(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:(Z)|([+-])(\d\d):(\d\d)|@([A-Za-z][A-Za-z0-9_+\-/]*))?")
_DURATION = re.compile(
    r"(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?=\d|\.\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?|\.\d+)S)?)?")
_UTC = UTC
_EPOCH = datetime(1970, 1, 1)
MAX_OFFSET = timedelta(hours=18)


@lru_cache(maxsize=512)
def zone(name: str) -> tzinfo:
    """An IANA zone by name (``Europe/Paris``); :class:`FeelError` for an unknown one."""
    if name in ("Z", "UTC") or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-/]*", name) or ".." in name:
        if name in ("Z", "UTC"):
            return ZoneInfo("UTC")
        raise FeelError(Msg("'%(name)s' is not a time zone", name=name))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise FeelError(Msg("'%(name)s' is not a time zone", name=name)) from None


def offset_zone(offset: timedelta) -> tzinfo:
    if abs(offset) > MAX_OFFSET:
        raise FeelError(Msg("a time offset must be within ±18 hours, not %(offset)s", offset=format_duration(offset)))
    return _UTC if not offset else timezone(offset)


# --------------------------------------------------------------------------------------------- parsing


def _year(sign: str, digits: str) -> int:
    year = int(digits) * (-1 if sign else 1)
    if not 1 <= year <= 9999:
        raise FeelError(Msg("year %(year)s is outside 1..9999, the years Tideflow's dates hold", year=year))
    return year


def parse_date(text: str) -> date:
    match = _DATE.fullmatch(text)
    if match is None:
        raise FeelError(Msg("'%(text)s' is not a date (YYYY-MM-DD)", text=text))
    try:
        return date(_year(match[1], match[2]), int(match[3]), int(match[4]))
    except ValueError:
        raise FeelError(Msg("'%(text)s' is not a date", text=text)) from None


def _micro(fraction: str | None) -> int:
    return int((fraction or "0")[:6].ljust(6, "0"))


def _time_zone(match: re.Match[str]) -> tzinfo | None:
    if match[5]:
        return _UTC
    if match[6]:
        hours, minutes = int(match[7]), int(match[8])
        if minutes > 59:
            raise FeelError(Msg("offset minutes above 59"))
        offset = timedelta(hours=hours, minutes=minutes) * (-1 if match[6] == "-" else 1)
        return offset_zone(offset)
    if match[9]:
        return zone(match[9])
    return None


def parse_time(text: str) -> time:
    match = _TIME.fullmatch(text)
    if match is None:
        raise FeelError(Msg("'%(text)s' is not a time (hh:mm:ss)", text=text))
    hour, minute, second = int(match[1]), int(match[2]), int(match[3])
    if hour > 23 or minute > 59 or second > 59:
        raise FeelError(Msg("'%(text)s' is not a time", text=text))
    return time(hour, minute, second, _micro(match[4]), tzinfo=_time_zone(match))


def parse_date_time(text: str) -> datetime:
    day_text, separator, time_text = text.partition("T")
    day = parse_date(day_text)
    if not separator:
        return datetime(day.year, day.month, day.day)
    midnight_after = re.match(r"24:00:00(?:\.0*)?(?=$|[Z+\-@])", time_text)
    clock = parse_time("00:00:00" + time_text[midnight_after.end():] if midnight_after else time_text)
    value = datetime.combine(day, clock.replace(tzinfo=None), tzinfo=clock.tzinfo)
    if midnight_after:  # 24:00:00 is the midnight that ends the day
        try:
            value += timedelta(days=1)
        except OverflowError:
            raise FeelError(Msg("'%(text)s' is outside the years 1..9999", text=text)) from None
    return value


def parse_duration(text: str) -> timedelta | YearsMonths:
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "-P") or text.endswith("T"):
        raise FeelError(Msg("'%(text)s' is not a duration (such as P1D, PT2H30M or P1Y2M)", text=text))
    negative = -1 if match[1] else 1
    years, months = match[2], match[3]
    day_time = [match[4], match[5], match[6], match[7]]
    if (years or months) and any(day_time):
        raise FeelError(Msg("'%(text)s' mixes years/months with days/time; FEEL has no such duration", text=text))
    if years or months:
        return YearsMonths(negative * (int(years or 0) * 12 + int(months or 0)))
    seconds = Decimal(match[7] if match[7] and match[7] != "." else "0")
    total = timedelta(days=int(match[4] or 0), hours=int(match[5] or 0), minutes=int(match[6] or 0),
                      microseconds=int((seconds * 1_000_000).to_integral_value(ROUND_DOWN)))
    return total * negative


def parse_temporal(text: str) -> Any:
    """The value of an ``@"…"`` literal: a date and time, date, time or duration by its shape."""
    if text.startswith(("P", "-P")):
        return parse_duration(text)
    if "T" in text:
        return parse_date_time(text)
    if _DATE.fullmatch(text):
        return parse_date(text)
    if _TIME.fullmatch(text):
        return parse_time(text)
    raise FeelError(Msg("@\"%(text)s\" is not a date, time, date and time or duration literal", text=text))


# --------------------------------------------------------------------------------------------- arithmetic


def add_months(value: date, months: int) -> date:
    """``value`` moved by whole months, the day kept or clamped to the month's last day."""
    total = value.year * 12 + (value.month - 1) + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise FeelError(Msg("the date is outside the years 1..9999"))
    day = min(value.day, _month_days(year, month + 1))
    return value.replace(year=year, month=month + 1, day=day)


def _month_days(year: int, month: int) -> int:
    following = date(year + (month == 12), month % 12 + 1, 1) if year < 9999 or month < 12 else date(9999, 12, 31)
    return (following - date(year, month, 1)).days if year < 9999 or month < 12 else 31


def as_date_time(value: date) -> datetime:
    """A date as the date and time at its midnight (UTC, as FEEL's date arithmetic does)."""
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=_UTC)


def instant(value: datetime) -> datetime:
    """A zoned date and time as the same instant in UTC; a local one as it is."""
    return value.astimezone(_UTC) if value.tzinfo is not None else value


def subtract_date_times(left: datetime, right: datetime) -> timedelta:
    if (left.tzinfo is None) != (right.tzinfo is None):
        raise FeelError(Msg("cannot subtract a date and time without a time zone and one with a time zone"))
    return instant(left) - instant(right)


def add_duration(value: datetime, duration: timedelta) -> datetime:
    """Date and time + days and time duration: exact time elapsed (an instant for zoned values)."""
    try:
        if isinstance(value.tzinfo, ZoneInfo):
            return (value.astimezone(_UTC) + duration).astimezone(value.tzinfo)
        return value + duration
    except OverflowError:
        raise FeelError(Msg("the date is outside the years 1..9999")) from None


def time_seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def add_time(value: time, duration: timedelta) -> time:
    micro = (time_seconds(value) * 1_000_000 + value.microsecond
             + (duration.days * 86400 + duration.seconds) * 1_000_000 + duration.microseconds) % (86400 * 1_000_000)
    seconds, micro = divmod(micro, 1_000_000)
    return time(seconds // 3600, seconds // 60 % 60, seconds % 60, micro, tzinfo=value.tzinfo)


def subtract_times(left: time, right: time) -> timedelta:
    def micros(value: time) -> int:
        offset = value.utcoffset() if isinstance(value.tzinfo, timezone) else None
        base = time_seconds(value) * 1_000_000 + value.microsecond
        return base - (int(offset.total_seconds()) * 1_000_000 if offset else 0)

    if (left.tzinfo is None) != (right.tzinfo is None):
        raise FeelError(Msg("cannot subtract a local time and a time with an offset"))
    return timedelta(microseconds=micros(left) - micros(right))


def duration_seconds(value: timedelta) -> Decimal:
    return Decimal(value.days * 86400 + value.seconds) + Decimal(value.microseconds) / 1_000_000


def seconds_duration(seconds: Decimal) -> timedelta:
    micro = (seconds * 1_000_000).to_integral_value(ROUND_FLOOR)
    try:
        return timedelta(microseconds=int(micro))
    except OverflowError:
        raise FeelError(Msg("the duration is too long")) from None


def scale_duration(value: timedelta, factor: Decimal) -> timedelta:
    return seconds_duration(NUMBERS.multiply(duration_seconds(value), factor))


def months_between(start: date, end: date) -> int:
    """Whole months from ``start`` to ``end`` (``years and months duration(from, to)``)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    start_rest = (start.day, start.time() if isinstance(start, datetime) else time())
    end_rest = (end.day, end.time() if isinstance(end, datetime) else time())
    if months > 0 and end_rest < start_rest:
        months -= 1
    elif months < 0 and end_rest > start_rest:
        months += 1
    return months


def local_offset(value: datetime | time) -> timedelta | None:
    """``time offset`` of a value: its offset, or None for a local one."""
    if value.tzinfo is None:
        return None
    if isinstance(value, datetime):
        return value.utcoffset()
    if isinstance(value.tzinfo, timezone):
        return value.utcoffset()
    return None


def zone_name(value: datetime | time) -> str | None:
    """``timezone`` of a value: its IANA zone name, else None."""
    return value.tzinfo.key if isinstance(value.tzinfo, ZoneInfo) else None


def epoch_seconds(value: datetime) -> Decimal:
    return duration_seconds(instant(value).replace(tzinfo=None) - _EPOCH)
