"""Business calendars: weekends, holidays, 调休 make-up days, lunch breaks, DST, pauses, and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from activities.tickets.calendar import (
    BusinessCalendar,
    CalendarError,
    WorkingHours,
    add_business_time,
    business_time_between,
    business_time_used,
    deadline_with_pauses,
    is_business_time,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

#: 2024 National Day: Oct 1–7 off; Sunday Sep 29 and Saturday Oct 12 are make-up workdays (调休).
def hours(*spans: tuple[str, str]) -> tuple[WorkingHours, ...]:
    return tuple(WorkingHours.model_validate({"start": start, "end": end}) for start, end in spans)


CHINA_2024 = BusinessCalendar(
    timezone="Asia/Shanghai",
    working_hours=hours(("09:00", "12:00"), ("13:00", "18:00")),
    holidays=frozenset(date(2024, 10, day) for day in range(1, 8)),
    extra_working_days=frozenset({date(2024, 9, 29), date(2024, 10, 12)}),
)
BERLIN_OFFICE = BusinessCalendar(timezone="Europe/Berlin", working_hours=hours(("09:00", "17:00")))
BERLIN_24_7 = BusinessCalendar(timezone="Europe/Berlin", working_days=frozenset(range(1, 8)),
                               working_hours=hours(("00:00", "24:00")))


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


# --------------------------------------------------------------------------------------------- deadlines


def test_within_one_day() -> None:
    assert add_business_time(CHINA_2024, sh(2024, 3, 18, 9), 2 * H) == sh(2024, 3, 18, 11)


def test_lunch_break_does_not_count() -> None:
    assert add_business_time(CHINA_2024, sh(2024, 3, 18, 11), 2 * H) == sh(2024, 3, 18, 14)
    assert business_time_between(CHINA_2024, sh(2024, 3, 18, 11), sh(2024, 3, 18, 14)) == 2 * H


def test_starting_outside_hours_counts_from_the_next_window() -> None:
    assert add_business_time(CHINA_2024, sh(2024, 3, 18, 7, 30), 30 * MINUTE) == sh(2024, 3, 18, 9, 30)
    assert add_business_time(CHINA_2024, sh(2024, 3, 18, 12, 15), 30 * MINUTE) == sh(2024, 3, 18, 13, 30)
    assert add_business_time(CHINA_2024, sh(2024, 3, 18, 20), 30 * MINUTE) == sh(2024, 3, 19, 9, 30)


def test_a_deadline_ending_exactly_at_close_is_at_close_not_next_morning() -> None:
    assert add_business_time(CHINA_2024, sh(2024, 3, 18, 16), 2 * H) == sh(2024, 3, 18, 18)
    assert add_business_time(CHINA_2024, sh(2024, 3, 18, 10), 2 * H) == sh(2024, 3, 18, 12)


def test_across_a_weekend() -> None:
    friday = sh(2024, 3, 15, 17)
    assert add_business_time(CHINA_2024, friday, 2 * H) == sh(2024, 3, 18, 10)
    assert business_time_between(CHINA_2024, friday, sh(2024, 3, 18, 10)) == 2 * H
    assert business_time_between(CHINA_2024, sh(2024, 3, 16, 10), sh(2024, 3, 17, 23)) == timedelta(0)


def test_across_a_public_holiday() -> None:
    # 1 h on Monday Sep 30, Oct 1–7 off, 3 h on Tuesday Oct 8 ends exactly at lunch
    assert add_business_time(CHINA_2024, sh(2024, 9, 30, 17), 4 * H) == sh(2024, 10, 8, 12)
    assert business_time_between(CHINA_2024, sh(2024, 9, 30, 17), sh(2024, 10, 8, 12)) == 4 * H
    assert not CHINA_2024.is_working_day(date(2024, 10, 3))


def test_make_up_workdays_on_a_weekend() -> None:
    # Saturday Sep 28 is off, Sunday Sep 29 is a make-up workday
    assert add_business_time(CHINA_2024, sh(2024, 9, 28, 10), H) == sh(2024, 9, 29, 10)
    # Friday Oct 11 → make-up Saturday Oct 12
    assert add_business_time(CHINA_2024, sh(2024, 10, 11, 17, 30), H) == sh(2024, 10, 12, 9, 30)
    assert CHINA_2024.is_working_day(date(2024, 10, 12))
    assert not CHINA_2024.is_working_day(date(2024, 10, 13))
    assert business_time_between(CHINA_2024, sh(2024, 9, 28, 0), sh(2024, 9, 30, 0)) == 8 * H


def test_full_sla_4h_example() -> None:
    """工单路由: SLA 4 h for a refund opened Friday afternoon before National Day 2024."""
    opened = sh(2024, 9, 27, 16, 30)  # Friday
    # 1.5 h Friday, then Sunday Sep 29 (make-up) 09:00–11:30
    assert add_business_time(CHINA_2024, opened, 4 * H) == sh(2024, 9, 29, 11, 30)


def test_results_are_in_the_calendar_zone_whatever_the_input_zone() -> None:
    start_utc = datetime(2024, 3, 18, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    deadline = add_business_time(CHINA_2024, start_utc, H)
    assert deadline == sh(2024, 3, 18, 10)
    assert deadline.tzinfo == SHANGHAI


def test_zero_duration_is_the_start_and_negative_is_refused() -> None:
    saturday = sh(2024, 3, 16, 10)
    assert add_business_time(CHINA_2024, saturday, timedelta(0)) == saturday
    with pytest.raises(ValueError, match="negative"):
        add_business_time(CHINA_2024, saturday, -H)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(CHINA_2024, datetime(2024, 3, 18, 9), H)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_time_between(CHINA_2024, sh(2024, 3, 18, 9), datetime(2024, 3, 18, 10))


def test_between_is_antisymmetric() -> None:
    assert business_time_between(CHINA_2024, sh(2024, 3, 18, 10), sh(2024, 3, 18, 9)) == -H


def test_is_business_time() -> None:
    assert is_business_time(CHINA_2024, sh(2024, 3, 18, 9))
    assert is_business_time(CHINA_2024, sh(2024, 3, 18, 11, 59))
    assert not is_business_time(CHINA_2024, sh(2024, 3, 18, 12))
    assert not is_business_time(CHINA_2024, sh(2024, 3, 18, 18))
    assert not is_business_time(CHINA_2024, sh(2024, 10, 2, 10))
    assert is_business_time(CHINA_2024, sh(2024, 9, 29, 10))


def test_weekday_hours_override() -> None:
    saturday_mornings = BusinessCalendar(working_days=frozenset(range(1, 7)),
                                         weekday_hours={6: hours(("09:00", "12:00"))})
    assert add_business_time(saturday_mornings, sh(2024, 3, 15, 17), 2 * H) == sh(2024, 3, 16, 10)
    assert add_business_time(saturday_mornings, sh(2024, 3, 16, 11), 2 * H) == sh(2024, 3, 18, 10)


# --------------------------------------------------------------------------------------------- DST


def test_office_hours_across_the_berlin_spring_forward_weekend() -> None:
    friday = berlin(2024, 3, 29, 16)  # CET, +01:00
    deadline = add_business_time(BERLIN_OFFICE, friday, 2 * H)
    assert deadline == berlin(2024, 4, 1, 10)
    assert deadline.utcoffset() == 2 * H  # CEST
    assert business_time_between(BERLIN_OFFICE, friday, deadline) == 2 * H


def test_office_hours_across_the_berlin_fall_back_weekend() -> None:
    deadline = add_business_time(BERLIN_OFFICE, berlin(2024, 10, 25, 16), 2 * H)
    assert deadline == berlin(2024, 10, 28, 10)
    assert deadline.utcoffset() == H


def test_a_round_the_clock_desk_has_a_23_and_a_25_hour_day() -> None:
    assert business_time_between(BERLIN_24_7, berlin(2024, 3, 31, 0), berlin(2024, 4, 1, 0)) == 23 * H
    assert business_time_between(BERLIN_24_7, berlin(2024, 10, 27, 0), berlin(2024, 10, 28, 0)) == 25 * H
    assert add_business_time(BERLIN_24_7, berlin(2024, 3, 30, 12), 24 * H) == berlin(2024, 3, 31, 13)
    assert add_business_time(BERLIN_24_7, berlin(2024, 10, 26, 12), 24 * H) == berlin(2024, 10, 27, 11)


def test_a_window_edge_inside_the_dst_gap_moves_forward() -> None:
    night_shift = BusinessCalendar(timezone="Europe/Berlin", working_days=frozenset(range(1, 8)),
                                   working_hours=hours(("02:30", "04:00")))
    # 02:30 does not exist on 2024-03-31: the window is 03:30–04:00 CEST that night
    assert night_shift.windows_on(date(2024, 3, 31)) == [
        (datetime(2024, 3, 31, 1, 30, tzinfo=UTC), datetime(2024, 3, 31, 2, 0, tzinfo=UTC))]
    assert add_business_time(night_shift, berlin(2024, 3, 31, 0), 15 * MINUTE) == berlin(2024, 3, 31, 3, 45)


def test_shanghai_has_no_dst_surprises() -> None:
    every_day = BusinessCalendar(working_days=frozenset(range(1, 8)), working_hours=hours(("00:00", "24:00")))
    assert business_time_between(every_day, sh(2024, 1, 1), sh(2025, 1, 1)) == timedelta(days=366)


# --------------------------------------------------------------------------------------------- pauses


def test_waiting_on_the_customer_does_not_count() -> None:
    start = sh(2024, 3, 18, 10)
    pauses = [(sh(2024, 3, 18, 11), sh(2024, 3, 18, 14))]  # 1 h used before the pause, resumed at 14:00
    assert deadline_with_pauses(CHINA_2024, start, 4 * H, pauses) == sh(2024, 3, 18, 17)
    assert business_time_used(CHINA_2024, start, sh(2024, 3, 18, 17), pauses) == 4 * H
    assert business_time_used(CHINA_2024, start, sh(2024, 3, 18, 12, 30), pauses) == H


def test_an_open_pause_stops_the_clock() -> None:
    start = sh(2024, 3, 18, 10)
    assert deadline_with_pauses(CHINA_2024, start, 4 * H, [(sh(2024, 3, 18, 11), None)]) is None
    # the target was met before the pause began
    assert deadline_with_pauses(CHINA_2024, start, H, [(sh(2024, 3, 18, 11), None)]) == sh(2024, 3, 18, 11)
    assert business_time_used(CHINA_2024, start, sh(2024, 3, 19, 18), [(sh(2024, 3, 18, 11), None)]) == H


def test_overlapping_unsorted_and_irrelevant_pauses() -> None:
    start = sh(2024, 3, 18, 9)
    pauses = [
        (sh(2024, 3, 18, 15), sh(2024, 3, 18, 16)),
        (sh(2024, 3, 17, 10), sh(2024, 3, 17, 12)),  # before the ticket: ignored
        (sh(2024, 3, 18, 10), sh(2024, 3, 18, 11)),
        (sh(2024, 3, 18, 10, 30), sh(2024, 3, 18, 11, 30)),  # overlaps the previous one
        (sh(2024, 3, 18, 19), sh(2024, 3, 18, 22)),  # outside business hours: no effect
    ]
    # used: 09–10, 11:30–12, 13–15, 16–17:30 → 5 h
    assert deadline_with_pauses(CHINA_2024, start, 5 * H, pauses) == sh(2024, 3, 18, 17, 30)
    assert deadline_with_pauses(CHINA_2024, start, 5 * H, []) == add_business_time(CHINA_2024, start, 5 * H)


def test_a_pause_spanning_the_start() -> None:
    start = sh(2024, 3, 18, 10)
    assert deadline_with_pauses(CHINA_2024, start, H, [(sh(2024, 3, 18, 9), sh(2024, 3, 18, 13, 30))]) == \
        sh(2024, 3, 18, 14, 30)


def test_bad_pauses_are_refused() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        deadline_with_pauses(CHINA_2024, sh(2024, 3, 18, 9), H, [(sh(2024, 3, 18, 11), sh(2024, 3, 18, 10))])
    with pytest.raises(ValueError, match="negative"):
        deadline_with_pauses(CHINA_2024, sh(2024, 3, 18, 9), -H, [])
    assert deadline_with_pauses(CHINA_2024, sh(2024, 3, 16, 9), timedelta(0), []) == sh(2024, 3, 16, 9)


# --------------------------------------------------------------------------------------------- the model


@pytest.mark.parametrize(("data", "problem"), [
    ({"timezone": "Mars/Olympus"}, "not an IANA time zone"),
    ({"working_days": [0, 1]}, "ISO weekdays"),
    ({"working_hours": [{"start": "18:00", "end": "09:00"}]}, "end before they start"),
    ({"working_hours": [{"start": "09:00", "end": "13:00"}, {"start": "12:00", "end": "18:00"}]}, "overlap"),
    ({"weekday_hours": {8: [{"start": "09:00", "end": "12:00"}]}}, "not an ISO weekday"),
    ({"holidays": ["2024-10-01"], "extra_working_days": ["2024-10-01"]},
     "both a holiday and an extra working day"),
])
def test_calendar_validation(data: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        BusinessCalendar.model_validate(data)
    assert problem in str(caught.value)


def test_calendar_json_round_trip_is_stable() -> None:
    dumped = CHINA_2024.model_dump_json()
    assert BusinessCalendar.model_validate_json(dumped) == CHINA_2024
    assert '"holidays":["2024-10-01","2024-10-02"' in dumped
    late = BusinessCalendar.model_validate({"working_hours": [{"start": "20:00", "end": "24:00"}]})
    assert late.working_hours[0].end == time(0)


def test_a_calendar_without_weekly_hours_ends() -> None:
    one_day = BusinessCalendar(working_days=frozenset(), extra_working_days=frozenset({date(2024, 6, 1)}))
    assert add_business_time(one_day, sh(2024, 5, 1), 9 * H) == sh(2024, 6, 1, 18)
    with pytest.raises(CalendarError, match="no business time left"):
        add_business_time(one_day, sh(2024, 5, 1), 10 * H)
    assert business_time_between(one_day, sh(2024, 1, 1), sh(2030, 1, 1)) == 9 * H


# --------------------------------------------------------------------------------------------- properties

CALENDARS = st.sampled_from([CHINA_2024, BERLIN_OFFICE, BERLIN_24_7])
# March–November 2024: both Berlin DST changes, National Day and its make-up workdays
INSTANTS = st.datetimes(min_value=datetime(2024, 3, 1), max_value=datetime(2024, 11, 30),
                        timezones=st.just(UTC))
DURATIONS = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=12))


@settings(max_examples=100, deadline=None)
@given(CALENDARS, INSTANTS, DURATIONS)
def test_between_inverts_add(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> None:
    deadline = add_business_time(calendar, start, duration)
    assert business_time_between(calendar, start, deadline) == duration
    # the deadline is the earliest such instant
    assert business_time_between(calendar, start, deadline - timedelta(microseconds=1)) < duration


@settings(max_examples=60, deadline=None)
@given(CALENDARS, INSTANTS, DURATIONS, DURATIONS)
def test_add_is_monotone(calendar: BusinessCalendar, start: datetime, first: timedelta,
                         second: timedelta) -> None:
    shorter, longer = sorted((first, second))
    assert add_business_time(calendar, start, shorter) <= add_business_time(calendar, start, longer)


@settings(max_examples=60, deadline=None)
@given(CALENDARS, st.lists(INSTANTS, min_size=3, max_size=3).map(sorted))
def test_between_is_additive_and_monotone(calendar: BusinessCalendar, instants: list[datetime]) -> None:
    a, b, c = instants
    assert business_time_between(calendar, a, b) + business_time_between(calendar, b, c) == \
        business_time_between(calendar, a, c)
    assert timedelta(0) <= business_time_between(calendar, a, b) <= business_time_between(calendar, a, c)
    assert business_time_between(calendar, a, b) <= b - a  # never more than elapsed real time


PAUSES = st.lists(st.tuples(INSTANTS, st.one_of(st.none(), st.timedeltas(min_value=timedelta(0),
                                                                         max_value=timedelta(days=3)))),
                  max_size=4)


@settings(max_examples=60, deadline=None)
@given(CALENDARS, INSTANTS, DURATIONS, PAUSES)
def test_pauses_only_push_the_deadline_out_by_the_paused_business_time(
        calendar: BusinessCalendar, start: datetime, target: timedelta,
        raw_pauses: list[tuple[datetime, timedelta | None]]) -> None:
    pauses = [(begin, None if length is None else begin + length) for begin, length in raw_pauses]
    assume(len([end for _, end in pauses if end is None]) <= 1)
    deadline = deadline_with_pauses(calendar, start, target, pauses)
    unpaused = add_business_time(calendar, start, target)
    if deadline is None:
        assert any(end is None for _, end in pauses)
        return
    assert deadline >= unpaused
    assert business_time_used(calendar, start, deadline, pauses) == target
