"""Business-hours calendars for ticket SLAs: deadlines, elapsed business time, customer-wait pauses.

A :class:`BusinessCalendar` says when the clock runs: working days (ISO weekdays, Monday = 1 …
Sunday = 7), working hours (one or several intervals a day, e.g. 09:00–12:00 and 13:00–18:00 with
a lunch break; optionally different hours per weekday), public holidays and extra working days —
the make-up workdays (调休) China moves onto weekends around Spring Festival and National Day.

Semantics:

- Business time is *elapsed real time* inside the local working windows. Windows are laid out in
  the calendar's IANA time zone and all arithmetic happens in UTC, so a DST change never adds or
  loses an hour by itself: 09:00–18:00 is 9 h on every day; a window spanning the change (e.g. a
  24-hour desk) is 23 h or 25 h long that day. A window edge that falls in a DST gap moves forward
  by the gap (02:30 on the spring-forward day is 03:30); one in the repeated hour takes the first
  occurrence.
- A window ends at its ``end`` (exclusive); an end of ``00:00`` or ``"24:00"`` means midnight at the
  end of the day.
- Holidays win over working days; extra working days use the standard ``working_hours`` (not a
  weekday override), and must not also be holidays.
- :func:`add_business_time` returns the *earliest* instant by which ``duration`` of business time
  has elapsed: a 2-hour SLA opened at 16:00 with a 18:00 close is due at 18:00 that day, not at
  09:00 next morning. A zero duration returns the start itself. Results are in the calendar's zone.
- Pauses (time waiting on the customer) do not count. An open pause (end None) stops the clock,
  so :func:`deadline_with_pauses` returns None while it lasts, unless the target was already met
  before it began.

All datetimes must be timezone-aware; naive ones raise ValueError.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from engine.text import Msg, MsgError
from engine.zones import check_zone

Window = tuple[datetime, datetime]
Pause = tuple[datetime, datetime | None]

_MIDNIGHT = time(0)


class CalendarError(MsgError):
    """The calendar cannot answer, e.g. it has no business time left after a date."""


class WorkingHours(BaseModel):
    """One working interval of a day, e.g. 09:00–12:00. ``end`` 00:00 / "24:00" is the end of the day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _midnight(cls, value: Any) -> Any:
        return _MIDNIGHT if isinstance(value, str) and value.strip() in ("24:00", "24:00:00") else value

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError(Msg("working hours are local times; put the zone in the calendar's timezone"))
        if self.end != _MIDNIGHT and self.end <= self.start:
            raise ValueError(Msg("working hours %(start)s–%(end)s end before they start",
                                 start=self.start.strftime("%H:%M"), end=self.end.strftime("%H:%M")))
        return self

    def seconds_of_day(self) -> tuple[int, int]:
        """Start and end as seconds since local midnight (end of day = 86400)."""
        def seconds(moment: time) -> int:
            return moment.hour * 3600 + moment.minute * 60 + moment.second

        return seconds(self.start), 86400 if self.end == _MIDNIGHT else seconds(self.end)


def _hours(*spans: tuple[str, str]) -> tuple[WorkingHours, ...]:
    return tuple(WorkingHours.model_validate({"start": start, "end": end}) for start, end in spans)


class BusinessCalendar(BaseModel):
    """When the SLA clock runs. See the module docstring for the rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = Field(default="Asia/Shanghai", description="IANA time zone, e.g. Asia/Shanghai")
    working_days: frozenset[int] = Field(default=frozenset({1, 2, 3, 4, 5}),
                                         description="ISO weekdays: Monday = 1 … Sunday = 7")
    working_hours: tuple[WorkingHours, ...] = Field(
        default=_hours(("09:00", "18:00")), description="intervals of a working day, e.g. with a lunch break")
    weekday_hours: dict[int, tuple[WorkingHours, ...]] = Field(
        default_factory=dict, description="hours for particular ISO weekdays instead of working_hours")
    holidays: frozenset[date] = Field(default=frozenset(), description="days off even on a working weekday")
    extra_working_days: frozenset[date] = Field(
        default=frozenset(), description="make-up workdays (调休): working even on a weekend")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        return check_zone(name)

    @field_validator("working_days")
    @classmethod
    def _iso_weekdays(cls, days: frozenset[int]) -> frozenset[int]:
        wrong = sorted(day for day in days if not 1 <= day <= 7)
        if wrong:
            raise ValueError(Msg("working days are ISO weekdays 1 (Monday) … 7 (Sunday), not %(wrong)s", wrong=wrong))
        return days

    @field_validator("working_hours")
    @classmethod
    def _sorted_hours(cls, hours: tuple[WorkingHours, ...]) -> tuple[WorkingHours, ...]:
        return tuple(sorted(hours, key=WorkingHours.seconds_of_day))

    @field_validator("weekday_hours")
    @classmethod
    def _sorted_weekday_hours(cls, by_day: dict[int, tuple[WorkingHours, ...]]
                              ) -> dict[int, tuple[WorkingHours, ...]]:
        return {day: tuple(sorted(hours, key=WorkingHours.seconds_of_day)) for day, hours in by_day.items()}

    @field_serializer("working_days", "holidays", "extra_working_days")
    def _sorted(self, values: frozenset[Any]) -> list[Any]:
        return sorted(values)

    @model_validator(mode="after")
    def _consistent(self) -> BusinessCalendar:
        for weekday in self.weekday_hours:
            if not 1 <= weekday <= 7:
                raise ValueError(Msg("weekday_hours key %(weekday)s is not an ISO weekday 1 … 7", weekday=weekday))
        for hours in [self.working_hours, *self.weekday_hours.values()]:
            spans = [interval.seconds_of_day() for interval in hours]
            for (_, previous_end), (start, _) in pairwise(spans):
                if start < previous_end:
                    raise ValueError(Msg("working hours overlap: %(hours)s", hours=", ".join(
                        f"{interval.start:%H:%M}–{interval.end:%H:%M}" for interval in hours)))
        both = sorted(self.holidays & self.extra_working_days)
        if both:
            raise ValueError(Msg("%(days)s cannot be both a holiday and an extra working day",
                                 days=", ".join(map(str, both))))
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def hours_on(self, day: date) -> tuple[WorkingHours, ...]:
        """The working intervals of a local date (empty on days off), sorted."""
        if day in self.holidays:
            return ()
        if day in self.extra_working_days:
            return self.working_hours
        if day.isoweekday() in self.working_days:
            return self.weekday_hours.get(day.isoweekday(), self.working_hours)
        return ()

    def is_working_day(self, day: date) -> bool:
        return bool(self.hours_on(day))

    def windows_on(self, day: date) -> list[Window]:
        """The day's working windows as UTC instants, in order."""
        return self._windows_on(day, self.zone)

    def _windows_on(self, day: date, zone: ZoneInfo) -> list[Window]:
        windows: list[Window] = []
        for interval in self.hours_on(day):
            start = datetime.combine(day, interval.start, tzinfo=zone).astimezone(UTC)
            end_day = day + timedelta(days=1) if interval.end == _MIDNIGHT else day
            end = datetime.combine(end_day, interval.end, tzinfo=zone).astimezone(UTC)
            if end > start:
                windows.append((start, end))
        return windows

    def _last_working_day(self) -> date | None:
        """None when working time recurs every week; else the last extra working day (finite calendar)."""
        if any(self.weekday_hours.get(day, self.working_hours) for day in self.working_days):
            return None
        return max(self.extra_working_days, default=date.min)

    def windows_from(self, moment: datetime) -> Iterator[Window]:
        """Working windows (UTC) ending after ``moment``, in order; endless unless the calendar is finite."""
        moment = _utc(moment, "moment")
        zone = self.zone
        day = moment.astimezone(zone).date() - timedelta(days=1)
        last = self._last_working_day()
        while last is None or day <= last:
            for window in self._windows_on(day, zone):
                if window[1] > moment:
                    yield window
            day += timedelta(days=1)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(Msg("%(name)s %(value)s must be timezone-aware",
                             name=name, value=moment.isoformat()))
    return moment.astimezone(UTC)


def is_business_time(calendar: BusinessCalendar, moment: datetime) -> bool:
    """Whether the SLA clock runs at ``moment`` (window starts count, window ends do not)."""
    instant = _utc(moment, "moment")
    first = next(calendar.windows_from(instant), None)
    return first is not None and first[0] <= instant


def add_business_time(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    """The earliest instant by which ``duration`` of business time has passed since ``start``."""
    cursor = _utc(start, "start")
    if duration < timedelta(0):
        raise ValueError(Msg("duration %(duration)s is negative", duration=duration))
    if duration == timedelta(0):
        return cursor.astimezone(calendar.zone)
    remaining = duration
    for window_start, window_end in calendar.windows_from(cursor):
        begin = max(window_start, cursor)
        available = window_end - begin
        if remaining <= available:
            return (begin + remaining).astimezone(calendar.zone)
        remaining -= available
    raise CalendarError(Msg("the calendar has no business time left after %(start)s (%(remaining)s "
                            "of %(duration)s still to go)",
                            start=start.isoformat(), remaining=remaining, duration=duration))


def business_time_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Business time from ``start`` to ``end``; negative when ``end`` is before ``start``."""
    begin, finish = _utc(start, "start"), _utc(end, "end")
    if finish < begin:
        return -business_time_between(calendar, end, start)
    total = timedelta(0)
    for window_start, window_end in calendar.windows_from(begin):
        if window_start >= finish:
            break
        total += min(window_end, finish) - max(window_start, begin)
    return total


def _merged_pauses(start: datetime, pauses: Sequence[Pause]) -> list[Pause]:
    """Pauses in UTC, sorted, overlaps merged, those ending before ``start`` dropped."""
    normalised: list[Pause] = []
    for pause_start, pause_end in pauses:
        begin = _utc(pause_start, "pause start")
        finish = None if pause_end is None else _utc(pause_end, "pause end")
        if finish is not None and finish < begin:
            raise ValueError(Msg("pause %(value)s – %(pause_end)s ends before it starts",
                                 value=pause_start.isoformat(), pause_end=pause_end))
        if finish is None or finish > start:
            normalised.append((begin, finish))
    normalised.sort(key=lambda pause: pause[0])
    merged: list[Pause] = []
    for begin, finish in normalised:
        if merged:
            last_begin, last_finish = merged[-1]
            if last_finish is None:
                break
            if begin <= last_finish:
                merged[-1] = (last_begin, None if finish is None else max(last_finish, finish))
                continue
        merged.append((begin, finish))
    return merged


def deadline_with_pauses(calendar: BusinessCalendar, start: datetime, target: timedelta,
                         pauses: Sequence[Pause]) -> datetime | None:
    """When ``target`` business time will have run, not counting ``pauses`` (end None = still paused).

    None while an open pause has stopped the clock before the target was reached.
    """
    cursor = _utc(start, "start")
    if target < timedelta(0):
        raise ValueError(Msg("target %(target)s is negative", target=target))
    if target == timedelta(0):
        return cursor.astimezone(calendar.zone)
    remaining = target
    for pause_start, pause_end in _merged_pauses(cursor, pauses):
        if pause_start > cursor:
            budget = business_time_between(calendar, cursor, pause_start)
            if budget >= remaining:
                return add_business_time(calendar, cursor, remaining)
            remaining -= budget
        if pause_end is None:
            return None
        cursor = max(cursor, pause_end)
    return add_business_time(calendar, cursor, remaining)


def business_time_used(calendar: BusinessCalendar, start: datetime, now: datetime,
                       pauses: Sequence[Pause]) -> timedelta:
    """Business time on the SLA clock from ``start`` to ``now``, not counting ``pauses``."""
    begin, finish = _utc(start, "start"), _utc(now, "now")
    if finish <= begin:
        return timedelta(0)
    used = business_time_between(calendar, begin, finish)
    for pause_start, pause_end in _merged_pauses(begin, pauses):
        clipped_start = max(pause_start, begin)
        clipped_end = finish if pause_end is None else min(pause_end, finish)
        if clipped_end > clipped_start:
            used -= business_time_between(calendar, clipped_start, clipped_end)
    return used
