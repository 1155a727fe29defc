"""Settlement periods: which days a cycle settles, and the period a run on a given day closes.

=================  ===================================================================
``daily``          one day; a run on day D settles D − 1 (T+1)
``weekly``         Monday to Sunday
``semi_monthly``   the 1st to the 15th, the 16th to the month's last day
``monthly``        a calendar month
``quarterly``      January–March, April–June, July–September, October–December
=================  ===================================================================

A period is a pair of local dates (both inclusive) in the plan's timezone; :func:`period_bounds` turns
it into the UTC instants ``[starts_at, ends_at)`` that orders are selected by. Pure functions.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from activities.settlement.errors import SettlementInputError
from engine.text import Msg

Cycle = Literal["daily", "weekly", "semi_monthly", "monthly", "quarterly"]
CYCLES: Final = ("daily", "weekly", "semi_monthly", "monthly", "quarterly")


@dataclass(frozen=True)
class Period:
    """Local dates ``start`` … ``end``, both inclusive."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise SettlementInputError(
                Msg("the period ends on %(end)s before it starts on %(start)s; swap --from "
                    "and --to",
                    end=self.end, start=self.start)
            )

    @property
    def label(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def period_containing(cycle: Cycle, day: date) -> Period:
    """The period of ``cycle`` that ``day`` falls in."""
    if cycle == "daily":
        return Period(day, day)
    if cycle == "weekly":
        monday = day - timedelta(days=day.weekday())
        return Period(monday, monday + timedelta(days=6))
    if cycle == "semi_monthly":
        if day.day <= 15:
            return Period(day.replace(day=1), day.replace(day=15))
        return Period(day.replace(day=16), day.replace(day=_last_day(day.year, day.month)))
    if cycle == "monthly":
        return Period(day.replace(day=1), day.replace(day=_last_day(day.year, day.month)))
    if cycle == "quarterly":
        first = ((day.month - 1) // 3) * 3 + 1
        return Period(date(day.year, first, 1), date(day.year, first + 2, _last_day(day.year, first + 2)))
    raise SettlementInputError(Msg("cycle '%(cycle)s' is unknown; use one of %(cycles)s",
                                   cycle=cycle, cycles=", ".join(CYCLES)))


def check_period(cycle: Cycle, period: Period) -> None:
    """Refuse a period that is not exactly one period of ``cycle`` (a T+1 day, a Monday–Sunday week, the
    1st–15th or 16th–last, a calendar month or quarter), naming the period that would fit."""
    fitting = period_containing(cycle, period.start)
    if fitting != period:
        names = {"daily": "one day (T+1)", "weekly": "Monday to Sunday", "semi_monthly": "the 1st–15th or the "
                 "16th–last day of a month", "monthly": "a calendar month", "quarterly": "a calendar quarter"}
        raise SettlementInputError(
            Msg("the period %(label)s does not fit the plan's %(cycle)s cycle "
                "(%(cycle_name)s); the period that starts with %(start)s is %(fitting)s: "
                "settle that, or one period at a time",
                label=period.label, cycle=cycle, cycle_name=names[cycle], start=period.start, fitting=fitting.label))


def period_to_settle(cycle: Cycle, today: date) -> Period:
    """The last complete period before ``today`` — what a run on ``today`` settles (T+1 for daily)."""
    current = period_containing(cycle, today)
    return period_containing(cycle, current.start - timedelta(days=1))


def local_today(now: datetime, timezone: str) -> date:
    """The local date of an aware instant in ``timezone``."""
    if now.tzinfo is None:
        raise SettlementInputError(Msg("a run's time must be timezone-aware"))
    return now.astimezone(ZoneInfo(timezone)).date()


def period_bounds(period: Period, timezone: str) -> tuple[datetime, datetime]:
    """``[starts_at, ends_at)`` in UTC: local midnight of the first day to local midnight after the last."""
    zone = ZoneInfo(timezone)
    starts = datetime.combine(period.start, time(0), tzinfo=zone).astimezone(UTC)
    ends = datetime.combine(period.end + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return starts, ends


def parse_day(text: str, what: str) -> date:
    """``YYYY-MM-DD`` → date, with an error naming the option."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SettlementInputError(Msg("%(what)s '%(text)s' is not a date; write it as YYYY-MM-DD, e.g. "
                                       "2026-11-01",
                                       what=what, text=text)) from None
