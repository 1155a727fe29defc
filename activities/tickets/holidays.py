"""China's public holidays and make-up workdays (调休) for SLA calendars, from the ``chinese-calendar``
package, which follows the State Council General Office's yearly notice on holiday arrangements
(国务院办公厅关于…部分节假日安排的通知; see docs/tickets.md for why this package and not ``holidays``).

A calendar is *prefilled* with a year's official days and then belongs to the ops user, who may remove a
holiday the desk works anyway or add a company day off: :func:`prefill` replaces the given year's dates
in a calendar's ``holidays`` and ``extra_working_days`` with the official ones and leaves every other
year, and every other setting, as it was. The dates are stored in the calendar (not looked up when a
deadline is computed), so an SLA never changes under a ticket when the package is upgraded.

Only weekdays are stored as holidays (a Saturday inside the Spring Festival break is no working day
anyway) and only weekend days as make-up workdays — exactly what :class:`BusinessCalendar` needs.
Pure: no database, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import chinese_calendar

from activities.tickets.calendar import BusinessCalendar
from engine.text import Msg

#: chinese-calendar's holiday names (English) → the names the State Council's notice uses
_ZH = {holiday.value: holiday.chinese for holiday in chinese_calendar.Holiday}


class HolidaysUnknown(ValueError):
    """The package has no official schedule for the year (the notice comes out each November)."""


@dataclass(frozen=True)
class OfficialDay:
    day: date
    name_en: str
    name_zh: str


@dataclass(frozen=True)
class OfficialYear:
    """A year's days off that fall on weekdays, and its make-up workdays on weekends."""

    year: int
    holidays: tuple[OfficialDay, ...]
    workdays: tuple[OfficialDay, ...]


def _days(year: int) -> list[date]:
    start = date(year, 1, 1)
    return [start + timedelta(days=n) for n in range((date(year + 1, 1, 1) - start).days)]


def years_known() -> range:
    """The years the installed package has the official schedule for."""
    first = min(day.year for day in chinese_calendar.holidays)
    last = max(day.year for day in chinese_calendar.holidays)
    return range(first, last + 1)


def official_year(year: int) -> OfficialYear:
    """The official days of ``year``; :class:`HolidaysUnknown` when the package does not have them yet."""
    if year not in years_known():
        known = years_known()
        raise HolidaysUnknown(Msg("the installed chinese-calendar has the State Council's schedule for %(first)s–"
                                  "%(last)s only, not %(year)s: enter %(year)s's holidays by hand, or upgrade the "
                                  "package once the notice is out (each November)", first=known.start,
                                  last=known.stop - 1, year=year))
    holidays: list[OfficialDay] = []
    workdays: list[OfficialDay] = []
    for day in _days(year):
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        if day.isoweekday() <= 5 and on_holiday and name:
            holidays.append(OfficialDay(day, str(name), _ZH.get(str(name), str(name))))
        elif day.isoweekday() > 5 and not on_holiday:
            english = str(name or "")
            workdays.append(OfficialDay(day, english, _ZH.get(english, english)))
    return OfficialYear(year, tuple(holidays), tuple(workdays))


def prefill(calendar: BusinessCalendar, year: int) -> BusinessCalendar:
    """``calendar`` with ``year``'s holidays and make-up workdays replaced by the official ones; other
    years' dates and every other setting are kept."""
    official = official_year(year)
    holidays = {d for d in calendar.holidays if d.year != year} | {h.day for h in official.holidays}
    extra = {d for d in calendar.extra_working_days if d.year != year} | {w.day for w in official.workdays}
    return calendar.model_copy(update={"holidays": frozenset(holidays), "extra_working_days": frozenset(extra)})


@dataclass(frozen=True)
class Difference:
    """How a calendar's dates of a year differ from the official ones: the ops user's overrides."""

    removed_holidays: tuple[date, ...]  # official days off the calendar works
    added_holidays: tuple[date, ...]  # days off the notice does not have
    removed_workdays: tuple[date, ...]
    added_workdays: tuple[date, ...]

    @property
    def any(self) -> bool:
        return bool(self.removed_holidays or self.added_holidays or self.removed_workdays or self.added_workdays)


def difference(calendar: BusinessCalendar, year: int) -> Difference:
    official = official_year(year)
    mine_h = {d for d in calendar.holidays if d.year == year}
    mine_w = {d for d in calendar.extra_working_days if d.year == year}
    off_h = {h.day for h in official.holidays}
    off_w = {w.day for w in official.workdays}
    return Difference(tuple(sorted(off_h - mine_h)), tuple(sorted(mine_h - off_h)),
                      tuple(sorted(off_w - mine_w)), tuple(sorted(mine_w - off_w)))


def names(year: int) -> dict[date, tuple[str, str]]:
    """Official day → (English name, Chinese name), for showing a calendar's dates; {} for an unknown year."""
    try:
        official = official_year(year)
    except HolidaysUnknown:
        return {}
    return {d.day: (d.name_en, d.name_zh) for d in (*official.holidays, *official.workdays)}


def as_json(calendar: BusinessCalendar) -> dict[str, Any]:
    """The calendar as a group stores it (``AgentGroup.calendar``)."""
    return calendar.model_dump(mode="json")
