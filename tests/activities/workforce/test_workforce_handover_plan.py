"""Handover planning within WeCom's limits (activities/workforce/handover.py): worked examples by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from activities.workforce.handover import (
    Colleague,
    CustomerRef,
    Departing,
    GroupRef,
    Strategy,
    TagRule,
    blocked_by_history,
    plan,
)

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
SALES = 7


def staff(userid: str, *, dept: int = SALES, seen_days_ago: float | None = 1, active: bool = True,
          customers: int = 0, limit: int | None = None) -> Colleague:
    seen = NOW - timedelta(days=seen_days_ago) if seen_days_ago is not None else None
    return Colleague(userid, departments=(dept,), active=active, last_active_at=seen, customers=customers,
                     customer_limit=limit)


def customers(n: int, prefix: str = "wmC") -> list[CustomerRef]:
    return [CustomerRef(f"{prefix}{i:05d}", f"c{i}") for i in range(n)]


ZHANG = Departing("zhangsan", resigned=True, departments=(SALES,), left_at=NOW - timedelta(days=1),
                  last_active_at=NOW - timedelta(days=2))


def test_round_robin_in_the_department_skips_other_departments_and_inactive_members() -> None:
    team = [staff("lisi"), staff("wangwu"), staff("zhaoliu", dept=9), staff("old", seen_days_ago=400),
            staff("gone", active=False), staff("zhangsan")]
    result = plan(ZHANG, customers(5), [], team, Strategy(kind="round_robin"), NOW)
    assert [m.to for m in result.moves] == ["lisi", "wangwu", "lisi", "wangwu", "lisi"]
    assert any("old" in w and "over a year" in w for w in result.warnings)
    assert [(b.to, len(b.ids)) for b in result.batches] == [("lisi", 3), ("wangwu", 2)]


def test_250_customers_to_one_colleague_are_three_calls_of_at_most_100() -> None:
    result = plan(ZHANG, customers(250), [], [staff("lisi")], Strategy(kind="colleague", colleague="lisi"), NOW)
    assert [len(b.ids) for b in result.batches] == [100, 100, 50]
    assert result.summary()["calls"] == 3 and result.summary()["movable_customers"] == 250


def test_twice_in_90_days_is_blocked_until_the_older_transfer_is_90_days_old() -> None:
    history = {"wmC00000": [NOW - timedelta(days=80), NOW - timedelta(days=10)],  # blocked until day 80+90
               "wmC00001": [NOW - timedelta(days=100), NOW - timedelta(days=10)],  # the first is outside the window
               "wmC00002": [NOW - timedelta(days=5)]}
    result = plan(ZHANG, customers(4), [], [staff("lisi")], Strategy(kind="colleague", colleague="lisi"), NOW,
                  customer_history=history, in_transfer={"wmC00003"})
    by_id = {m.id: m for m in result.moves}
    assert by_id["wmC00000"].blocked == "transferred_twice"
    assert by_id["wmC00000"].movable_from == NOW - timedelta(days=80) + timedelta(days=90)
    assert by_id["wmC00001"].to == "lisi" and by_id["wmC00002"].to == "lisi"
    assert by_id["wmC00003"].blocked == "in_transfer"
    assert result.summary()["blocked"] == {"in_transfer": 1, "transferred_twice": 1}
    assert all("wmC00000" not in b.ids and "wmC00003" not in b.ids for b in result.batches)


def test_blocked_by_history_edges() -> None:
    assert blocked_by_history([], NOW) is None
    two = [NOW - timedelta(days=89, hours=23), NOW - timedelta(days=1)]
    assert blocked_by_history(two, NOW) == two[0] + timedelta(days=90)
    three = [NOW - timedelta(days=60), NOW - timedelta(days=30), NOW - timedelta(days=1)]
    assert blocked_by_history(three, NOW) == three[1] + timedelta(days=90)


def test_by_tag_then_fallback_and_the_colleague_limit() -> None:
    people = [CustomerRef("wmA", tags=("VIP",)), CustomerRef("wmB", tags=("VIP", "华东")),
              CustomerRef("wmC", tags=("华东",)), CustomerRef("wmD")]
    team = [staff("vipdesk", limit=1, customers=0), staff("east"), staff("lisi")]
    strategy = Strategy(kind="by_tag", tag_rules=[TagRule(tag="VIP", to="vipdesk"), TagRule(tag="华东", to="east")])
    result = plan(ZHANG, people, [], team, strategy, NOW)
    assert [(m.id, m.to, m.blocked, m.rule) for m in result.moves] == [
        ("wmA", "vipdesk", None, "tag:VIP"),
        ("wmB", None, "colleague_full", "tag:VIP"),  # vipdesk may take one more customer only
        ("wmC", "east", None, "tag:华东"),
        ("wmD", "east", None, "fallback:round_robin")]  # round robin: east, lisi, vipdesk (sorted) …


def test_by_team_uses_the_customer_attribute() -> None:
    people = [CustomerRef("wm1", attributes={"team": "9"}), CustomerRef("wm2", attributes={"team": "9"}),
              CustomerRef("wm3", attributes={"team": "404"}), CustomerRef("wm4")]
    team = [staff("a9", dept=9), staff("b9", dept=9), staff("lisi")]
    result = plan(ZHANG, people, [], team, Strategy(kind="by_team", fallback="colleague", colleague="lisi"), NOW)
    assert [m.to for m in result.moves] == ["a9", "b9", "lisi", "lisi"]


def test_groups_respect_300_a_day_and_their_own_history() -> None:
    groups = [GroupRef(f"wr{i:04d}") for i in range(650)]
    history = {"wr0000": [NOW - timedelta(days=3), NOW - timedelta(days=2)]}
    result = plan(ZHANG, [], groups, [staff("lisi")], Strategy(kind="colleague", colleague="lisi"), NOW,
                  group_history=history, groups_moved_today=10)
    movable = [m for m in result.moves if not m.blocked]
    assert len(movable) == 649
    days = [m.day for m in movable]
    assert days.count(0) == 290 and days.count(1) == 300 and days.count(2) == 59
    calls = [(b.day, len(b.ids)) for b in result.batches]
    assert calls == [(0, 100), (0, 100), (0, 90), (1, 100), (1, 100), (1, 100), (2, 59)]
    assert result.summary()["days"] == 3


def test_a_member_who_left_over_a_year_ago_can_hand_over_nothing() -> None:
    gone = Departing("old", resigned=True, left_at=NOW - timedelta(days=400))
    result = plan(gone, customers(2), [GroupRef("wr1")], [staff("lisi")], Strategy(kind="colleague",
                                                                                   colleague="lisi"), NOW)
    assert {m.blocked for m in result.moves} == {"handover_inactive"} and result.batches == []


def test_nobody_to_take_over_is_said_per_customer() -> None:
    result = plan(ZHANG, customers(2), [], [staff("x", dept=99)], Strategy(kind="round_robin"), NOW)
    assert [m.blocked for m in result.moves] == ["no_colleague", "no_colleague"]


def test_strategy_needs_its_parameters() -> None:
    with pytest.raises(ValidationError, match="needs 'colleague'"):
        Strategy(kind="colleague")
    with pytest.raises(ValidationError, match="at least one tag rule"):
        Strategy(kind="by_tag")
    with pytest.raises(ValidationError):
        Strategy(kind="teleport")  # type: ignore[arg-type]


def test_plan_of_10000_customers_is_100_calls_spread_over_the_department() -> None:
    team = [staff(f"s{i:02d}") for i in range(7)]
    result = plan(ZHANG, customers(10_000), [], team, Strategy(kind="round_robin"), NOW)
    assert sum(len(b.ids) for b in result.batches) == 10_000
    assert all(len(b.ids) <= 100 for b in result.batches)
    per = result.summary()["per_colleague"]
    assert sorted(per.values()) == [1428, 1428, 1428, 1429, 1429, 1429, 1429]
