"""The mass-message allowance per recipient (activities/workforce/quota.py): WeCom's three corp settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activities.workforce.quota import CHINA, next_free, remaining, split, window


def china(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA)


def test_windows_follow_the_china_calendar() -> None:
    # 2026-02-28 20:00 UTC is already 1 March in China: March has 31 days
    w = window("month_days", datetime(2026, 2, 28, 20, 0, tzinfo=UTC))
    assert (w.start, w.end, w.limit) == (china(2026, 3, 1), china(2026, 4, 1), 31)
    assert window("month_days", china(2028, 2, 10)).limit == 29  # a leap February
    w = window("week_7", china(2026, 12, 6, 23, 59))  # a Sunday: the week began on Monday 30 November
    assert (w.start, w.end, w.limit) == (china(2026, 11, 30), china(2026, 12, 7), 7)
    w = window("day_1", china(2026, 12, 6, 0, 0))
    assert (w.start, w.end, w.limit) == (china(2026, 12, 6), china(2026, 12, 7), 1)
    with pytest.raises(ValueError, match="unknown quota policy"):
        window("hourly", china(2026, 1, 1))  # type: ignore[arg-type]


def test_remaining_and_split_with_history() -> None:
    now = china(2026, 12, 6, 12)
    daily = {"wmA": [china(2026, 12, 6, 9)], "wmB": [china(2026, 12, 5, 9)]}
    assert remaining("day_1", now, daily["wmA"]) == 0 and remaining("day_1", now, daily["wmB"]) == 1
    result = split("day_1", now, ["wmA", "wmB", "wmC", "wmB"], daily)
    assert result.allowed == ["wmB", "wmC"]
    assert result.at_limit == {"wmA": china(2026, 12, 7)}
    assert result.left == {"wmA": 0, "wmB": 0, "wmC": 0}
    december = [china(2026, 12, d) for d in range(1, 32)]  # 31 already this month: the limit
    monthly = split("month_days", now, ["wmFull", "wmNew"], {"wmFull": december})
    assert monthly.allowed == ["wmNew"] and monthly.left["wmNew"] == 30
    assert monthly.at_limit["wmFull"] == china(2027, 1, 1)


def test_next_free_skips_windows_that_are_already_full() -> None:
    now = china(2026, 12, 6, 12)
    week = [china(2026, 12, 1) + timedelta(hours=h) for h in range(7)] + \
           [china(2026, 12, 8) + timedelta(hours=h) for h in range(7)]  # this week and next are full
    assert next_free("week_7", now, week) == china(2026, 12, 14)
    assert next_free("week_7", now, []) == now
