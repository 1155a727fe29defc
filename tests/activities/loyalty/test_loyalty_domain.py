"""Loyalty maths by hand-worked examples: earning, expiry rules, FIFO burning, partial refunds, tiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.loyalty import points, tiers
from activities.loyalty.points import Lot

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 15, 4, 0, tzinfo=UTC)


def test_earning_is_integer_maths_rounded_down() -> None:
    assert points.earned_points(12_345, 1) == 123  # ¥123.45 at 1 point per yuan
    assert points.earned_points(12_345, 1, tier_multiplier="1.5") == 185  # 185.175
    assert points.earned_points(9_999, "2", tier_multiplier="1.2", campaign_multiplier="2", bonus=50) == 529  # 479.952
    assert points.earned_points(0, 1, bonus=100) == 100
    with pytest.raises(ValueError):
        points.earned_points(-1, 1)


def test_expiry_rules() -> None:
    # earned 2026-12-31 23:30 Shanghai (15:30 UTC): end of next year is 2028-01-01 00:00 Shanghai
    late = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
    assert points.expiry(late, "end_of_next_year") == datetime(2028, 1, 1, tzinfo=SH)
    assert points.expiry(T0, "days:30") == T0 + timedelta(days=30)
    assert points.expiry(datetime(2026, 11, 20, 4, tzinfo=UTC), "months:2") == datetime(2027, 2, 1, tzinfo=SH)
    assert points.expiry(T0, "never") is None
    with pytest.raises(ValueError, match="expiry rule"):
        points.expiry(T0, "weeks:2")


def lot(id_: int, remaining: int, earned_days: int, expires_days: int | None) -> Lot:
    return Lot(id_, remaining, T0 + timedelta(days=earned_days),
               None if expires_days is None else T0 + timedelta(days=expires_days))


def test_burning_takes_the_lots_that_expire_first() -> None:
    lots = [lot(1, 100, 0, 300), lot(2, 50, 5, 100), lot(3, 80, 10, None), lot(4, 40, 1, 2)]
    now = T0 + timedelta(days=20)  # lot 4 has expired: not spendable
    taken, short = points.allocate(lots, 170, now)
    assert taken == {2: 50, 1: 100, 3: 20} and short == 0
    taken, short = points.allocate(lots, 500, now)
    assert sum(taken.values()) == 230 and short == 270
    assert [x.id for x in points.expiring(lots, now)] == [4]
    # a refund reverses its own order's lot first
    assert points.allocate(lots, 60, now, prefer=3)[0] == {3: 60}


def test_partial_refunds_take_back_exactly_the_orders_points() -> None:
    earned, paid = 199, 19_900  # ¥199 → 199 points
    first = points.reversal(earned, paid, 5_000, 0)  # ¥50 refunded → floor(199×5000/19900) = 50
    second = points.reversal(earned, paid, 12_345, first)  # ¥123.45 in all → floor(123.45) = 123 → 73 more
    last = points.reversal(earned, paid, 19_900, first + second)
    assert (first, second, last) == (50, 73, 76) and first + second + last == earned
    assert points.reversal(earned, paid, 30_000, earned) == 0  # over-refunded: never more than earned


@given(st.integers(1, 10_000), st.integers(1, 10**7), st.lists(st.integers(0, 10**6), max_size=6))
def test_reversals_never_exceed_earned(earned: int, paid: int, refunds: list[int]) -> None:
    total, done = 0, 0
    for r in refunds:
        total += r
        step = points.reversal(earned, paid, total, done)
        assert step >= 0
        done += step
    assert done <= earned
    if total >= paid:
        assert done == earned


def test_a_cancelled_redemption_goes_back_to_its_lots_and_expired_ones_lapse() -> None:
    # lot 1 expires on day 100, lot 2 on day 300, lot 3 never, lot 4 expired on day 2; it is day 20
    lots = [lot(1, 0, 0, 100), lot(2, 5, 5, 300), lot(3, 0, 10, None), lot(4, 0, 1, 2)]
    now = T0 + timedelta(days=20)
    taken = {4: 10, 1: 50, 2: 30, 3: 20}  # the burn's record: 110 points from four lots
    # no debt: every lot that is still alive gets exactly what it gave; lot 4's 10 are not revived
    back = points.give_back(taken, lots, now)
    assert back == points.GiveBack(restored={1: 50, 2: 30, 3: 20}, lapsed={4: 10}, repaid=0)
    assert back.returned == 100
    # a debt of 60 is repaid first from the points that expire soonest: all of lot 1's 50, then 10 of lot 2's
    back = points.give_back(taken, lots, now, 60)
    assert back == points.GiveBack(restored={2: 20, 3: 20}, lapsed={4: 10}, repaid=60)
    assert back.returned == 100  # 20 + 20 back in lots, 60 off the debt
    # a debt larger than what comes back takes it all; nothing goes back to a lot
    assert points.give_back(taken, lots, now, 500) == points.GiveBack({}, {4: 10}, 100)
    # a lot whose expiry is already booked is closed even if its date has not come (nothing revives it)
    assert points.give_back({2: 30, 3: 20}, lots, now, closed={2}) == points.GiveBack({3: 20}, {2: 30}, 0)
    # the instant a lot expires it is no longer alive (as in allocate: expires_at > now is spendable)
    assert points.give_back({1: 50}, lots, T0 + timedelta(days=100)) == points.GiveBack({}, {1: 50}, 0)
    assert points.give_back({}, lots, now, 60) == points.GiveBack({}, {}, 0)


def test_giving_back_refuses_what_it_cannot_place() -> None:
    lots = [lot(1, 0, 0, 100)]
    with pytest.raises(ValueError, match="unknown"):
        points.give_back({1: 5, 9: 5}, lots, T0)
    with pytest.raises(ValueError):
        points.give_back({1: -5}, lots, T0)
    with pytest.raises(ValueError):
        points.give_back({1: 5}, lots, T0, -1)


@given(st.dictionaries(st.integers(1, 8), st.integers(0, 1000), max_size=8), st.integers(0, 5000),
       st.integers(0, 40))
def test_giving_back_accounts_for_every_point(taken: dict[int, int], debt: int, day: int) -> None:
    lots = [lot(i, 0, 0, None if i % 4 == 0 else i * 5) for i in range(1, 9)]
    back = points.give_back(taken, lots, T0 + timedelta(days=day), debt)
    assert back.returned + sum(back.lapsed.values()) == sum(taken.values())
    assert back.repaid == min(debt, back.returned)
    assert all(0 < n <= taken[i] for i, n in back.restored.items())
    assert not set(back.restored) & set(back.lapsed)


TIERS = [tiers.Tier("silver", "银卡", 0), tiers.Tier("gold", "金卡", 500_000, Decimal("1.5")),
         tiers.Tier("black", "黑金", 2_000_000, Decimal(2))]


def test_tiers_upgrade_at_once_and_downgrade_only_on_schedule() -> None:
    tiers.check_tiers(TIERS)
    assert tiers.evaluate(None, 0, TIERS, allow_downgrade=False) == tiers.Change(None, "silver", "none")
    assert tiers.evaluate("silver", 600_000, TIERS, allow_downgrade=False) == tiers.Change("silver", "gold", "up")
    assert tiers.evaluate("black", 100, TIERS, allow_downgrade=False).direction == "none"
    now = datetime(2027, 6, 1, tzinfo=UTC)
    assert tiers.evaluate("black", 100, TIERS, allow_downgrade=True, changed_at=now - timedelta(days=400),
                          now=now) == tiers.Change("black", "silver", "down")
    assert tiers.evaluate("black", 100, TIERS, allow_downgrade=True, changed_at=now - timedelta(days=30),
                          now=now).direction == "none"


@pytest.mark.parametrize("bad", [[], [tiers.Tier("a", "a", 5)], [tiers.Tier("a", "a", 0), tiers.Tier("b", "b", 0)],
                                 [tiers.Tier("a", "a", 0), tiers.Tier("a", "b", 9)]])
def test_bad_tier_tables_are_refused(bad: list[tiers.Tier]) -> None:
    with pytest.raises(ValueError):
        tiers.check_tiers(bad)
