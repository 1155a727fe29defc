"""SLA calendars prefilled with China's public holidays and make-up workdays (调休) from chinese-calendar,
checked against the State Council General Office's notice for 2026 (国办发明电〔2025〕7号, "关于2026年部分
节假日安排的通知"), typed in here by hand from the notice's text."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from activities.tickets.calendar import BusinessCalendar, add_business_time
from activities.tickets.holidays import HolidaysUnknown, difference, names, official_year, prefill, years_known

SH = ZoneInfo("Asia/Shanghai")

#: the 2026 notice: (first day off, last day off, make-up workdays)
NOTICE_2026 = [
    ("元旦", date(2026, 1, 1), date(2026, 1, 3), [date(2026, 1, 4)]),
    ("春节", date(2026, 2, 15), date(2026, 2, 23), [date(2026, 2, 14), date(2026, 2, 28)]),
    ("清明", date(2026, 4, 4), date(2026, 4, 6), []),
    ("劳动节", date(2026, 5, 1), date(2026, 5, 5), [date(2026, 5, 9)]),
    ("端午", date(2026, 6, 19), date(2026, 6, 21), []),
    ("中秋", date(2026, 9, 25), date(2026, 9, 27), []),
    ("国庆节", date(2026, 10, 1), date(2026, 10, 7), [date(2026, 9, 20), date(2026, 10, 10)]),
]


def _weekdays(first: date, last: date) -> set[date]:
    return {first + timedelta(days=n) for n in range((last - first).days + 1)
            if (first + timedelta(days=n)).isoweekday() <= 5}


def test_the_2026_schedule_is_the_state_councils() -> None:
    year = official_year(2026)
    expected_off = set().union(*(_weekdays(first, last) for _, first, last, _ in NOTICE_2026))
    expected_work = {d for *_, work in NOTICE_2026 for d in work}
    assert {h.day for h in year.holidays} == expected_off
    assert {w.day for w in year.workdays} == expected_work
    by_day = {h.day: h.name_zh for h in year.holidays}
    for name, first, last, _ in NOTICE_2026:
        assert {by_day[d] for d in _weekdays(first, last)} == {name}
    assert names(2026)[date(2026, 2, 16)] == ("Spring Festival", "春节")


def test_a_year_without_a_notice_is_refused_not_guessed() -> None:
    after = years_known().stop
    with pytest.raises(HolidaysUnknown, match=f"not {after}.*by hand"):
        official_year(after)
    assert names(after) == {}


def test_prefill_replaces_one_year_and_keeps_the_ops_users_other_dates() -> None:
    mine = BusinessCalendar(holidays=frozenset({date(2025, 12, 31), date(2026, 3, 9)}),
                            extra_working_days=frozenset({date(2025, 12, 27)}))
    filled = prefill(mine, 2026)
    assert date(2025, 12, 31) in filled.holidays and date(2025, 12, 27) in filled.extra_working_days  # other years
    assert date(2026, 3, 9) not in filled.holidays  # this year's own dates give way to the notice's
    assert {d for d in filled.holidays if d.year == 2026} == {h.day for h in official_year(2026).holidays}
    assert filled.working_hours == mine.working_hours and filled.timezone == mine.timezone
    assert not difference(filled, 2026).any
    # the ops user overrides: the desk works on 10-07 and closes on 12-24
    edited = filled.model_copy(update={"holidays": (filled.holidays - {date(2026, 10, 7)}) | {date(2026, 12, 24)}})
    diff = difference(BusinessCalendar.model_validate(edited.model_dump()), 2026)
    assert diff.removed_holidays == (date(2026, 10, 7),) and diff.added_holidays == (date(2026, 12, 24),)


def test_an_sla_runs_over_the_spring_festival_and_the_make_up_saturday() -> None:
    """A 4-hour SLA opened on Friday 2026-02-13 at 16:00: 2 hours that day; the Saturday 02-14 is a make-up
    workday, so it is due on Saturday at 11:00 — not after the break."""
    calendar = prefill(BusinessCalendar(), 2026)
    due = add_business_time(calendar, datetime(2026, 2, 13, 16, 0, tzinfo=SH), timedelta(hours=4))
    assert due == datetime(2026, 2, 14, 11, 0, tzinfo=SH)
    # opened on the Saturday at 17:00: 1 hour then, the break (02-15 … 02-23) stops the clock
    due = add_business_time(calendar, datetime(2026, 2, 14, 17, 0, tzinfo=SH), timedelta(hours=4))
    assert due == datetime(2026, 2, 24, 12, 0, tzinfo=SH)
    # without the prefill the same ticket would have been due on Monday 02-16, in the middle of the break
    plain = add_business_time(BusinessCalendar(), datetime(2026, 2, 13, 16, 0, tzinfo=SH), timedelta(hours=4))
    assert plain == datetime(2026, 2, 16, 11, 0, tzinfo=SH)
