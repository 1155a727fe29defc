"""The dashboards' figures (看板): what each role manages by, as functions over the database, one module per
board — :mod:`activities.reports.marketing` (marketer), :mod:`activities.reports.service` (ops),
:mod:`activities.reports.finance` (finance). The JSON API (``GET /api/dashboards/{board}``) and the pages
call the same functions, so the numbers on a dashboard are the API's numbers.

Every figure is for a :class:`Range` of whole local days (the workspace's display time zone); series are
per local day. Money is integer fen; the pages format it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.text import Msg, MsgError

#: the longest range a dashboard shows (a year and a day)
MAX_DAYS = 366


class RangeError(MsgError):
    """A range a dashboard cannot show; ``field`` names the parameter."""

    def __init__(self, field: str, message: Msg) -> None:
        super().__init__(message, field=field)


@dataclass(frozen=True)
class Range:
    """Whole local days from ``start`` to ``end`` (both included) in ``timezone``."""

    start: date
    end: date
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise RangeError("to", Msg("the range ends (%(end)s) before it starts (%(start)s); swap the dates",
                                       end=self.end, start=self.start))
        if (self.end - self.start).days + 1 > MAX_DAYS:
            raise RangeError("from", Msg("the range is longer than %(n)s days; pick a shorter one", n=MAX_DAYS))

    @classmethod
    def last(cls, days: int, today: date, timezone: str = "Asia/Shanghai") -> Range:
        """The ``days`` days up to and including ``today``."""
        return cls(today - timedelta(days=days - 1), today, timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def since(self) -> datetime:
        """The first instant of the range (UTC)."""
        return datetime.combine(self.start, time(0), self.zone).astimezone(UTC)

    @property
    def until(self) -> datetime:
        """The first instant after the range (UTC)."""
        return datetime.combine(self.end + timedelta(days=1), time(0), self.zone).astimezone(UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def day_of(self, moment: datetime) -> date:
        """The local day of an instant (naive datetimes are UTC, as stored)."""
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return aware.astimezone(self.zone).date()

    def as_dict(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "timezone": self.timezone}


def series(days: Iterable[date], counts: dict[date, int]) -> list[int]:
    """Counts per day, 0 for the days without any."""
    return [counts.get(day, 0) for day in days]


def chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
